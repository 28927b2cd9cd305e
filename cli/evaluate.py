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


@evaluate.command()
@options.model_option("translator_en_de")
@options.data_dir
@click.option("--split", default="test_2016_flickr", show_default=True, help="Multi30k split: val, test_2016_flickr, ...")
@click.option("--pairs", type=click.Path(dir_okay=False), default=None, help="Score on this tab-separated pair file instead.")
@click.option("--beam-size", type=click.IntRange(min=1, max=64), default=None, help="Default: the model's.")
@click.option("--length-penalty", type=float, default=None, help="Default: the model's.")
@click.option("--batch-size", default=64, show_default=True)
def translation(model_path, data_dir, split, pairs, beam_size, length_penalty, batch_size):
    """sacreBLEU BLEU and chrF of a translator on a Multi30k split (or your pair file)."""
    from toolkit.predictor import models_dir
    from toolkit.translation import evaluate as evaluate_translation

    report = evaluate_translation(model_path or models_dir() / "translator_en_de", data_dir, split=split, pairs=pairs,
                                  beam_size=beam_size, length_penalty=length_penalty, batch_size=batch_size)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))


@evaluate.command()
@options.model_option("forecast_co2")
@click.option("--csv", type=click.Path(dir_okay=False), default=None, help="Default: the series the model was trained on.")
@click.option("--column", default=None)
@click.option("--time-column", default=None)
def forecast(model_path, csv, column, time_column):
    """Test MAE of a forecaster (the last part of the series) next to the last-value and seasonal-naive forecasts."""
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.forecast import evaluate as evaluate_forecast
    from toolkit.predictor import models_dir

    report = evaluate_forecast(model_path or models_dir() / "forecast_co2", csv, column, time_column)
    click.echo(json.dumps(report, indent=2))


@evaluate.command()
@options.model_option("captioner")
@options.data_dir
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True)
@click.option("--beam-size", type=click.IntRange(min=1, max=64), default=None, help="Default: the model's.")
@click.option("--examples", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the first images with generated and reference captions.")
@click.option("--batch-size", default=32, show_default=True)
def captions(model_path, data_dir, split, beam_size, examples, batch_size):
    """BLEU-1..4 (sacreBLEU) and CIDEr-D of a captioner against every reference caption of a split."""
    from toolkit.captioning import evaluate as evaluate_captions
    from toolkit.predictor import models_dir

    report = evaluate_captions(model_path or models_dir() / "captioner", data_dir, split=split, beam_size=beam_size,
                               examples=examples, batch_size=batch_size)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))
