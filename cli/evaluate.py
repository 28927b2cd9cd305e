"""`toolkit evaluate FAMILY`: score an exported model on a test split."""

import json

import click

from cli import options


@click.group()
def evaluate():
    """Score an exported model on a data set's test split."""


@evaluate.command()
@options.model_option("sentiment")
@options.data_dir
@click.option("--batch-size", default=64, show_default=True)
def sentiment(model_path, data_dir, batch_size):
    """Accuracy of a sentiment model on the IMDB test reviews (or your class folders' test/)."""
    from toolkit.predictor import models_dir
    from toolkit.sentiment import evaluate as evaluate_sentiment

    report = evaluate_sentiment(model_path or models_dir() / "sentiment", data_dir, batch_size=batch_size)
    click.echo(json.dumps(report, indent=2))


@evaluate.command()
@options.model_option("cifar10_resnet")
@click.option("--dataset", type=click.Choice(["cifar10", "fashion_mnist", "folder"]), default="cifar10",
              show_default=True)
@options.data_dir
def images(model_path, dataset, data_dir):
    """Accuracy of an image classifier on a data set's test split (and its confusion matrix)."""
    from toolkit.images import evaluate as evaluate_images
    from toolkit.predictor import models_dir

    report = evaluate_images(model_path or models_dir() / "cifar10_resnet", dataset, data_dir)
    click.echo(json.dumps(report, indent=2))
