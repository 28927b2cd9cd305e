"""`toolkit evaluate FAMILY`: score an exported model on a test split."""

import click

from cli import options
from cli.output import Progress, echo_report
from toolkit.tasks import (
    captioning,
    forecasting,
    image_classification,
    text_classification,
    translation,
)


def evaluate_with(task, model_path, what, **kwargs):
    """`task.evaluate` on `model_path` (default: the task's shipped model); its report, printed as JSON.

    A bar counts the `what` scored on stderr when it is a terminal; stdout holds the report alone.
    """
    from toolkit.runtime import import_tensorflow
    from toolkit.serving import models_dir

    import_tensorflow()
    with Progress(what) as progress:
        report = task.evaluate(model_path or models_dir() / task.SHIPPED_MODEL, on_progress=progress.advance, **kwargs)
    echo_report(report)


confusion_png_option = click.option(
    "--confusion-png", type=click.Path(dir_okay=False), default=None,
    help="Also draw the confusion matrix (rows: true class, columns: predicted; counts, coloured by share of the "
         "row) as a PNG here.")


@click.group()
def evaluate():
    """Score an exported model on a data set's test split."""


@evaluate.command("sentiment")
@options.model_option(text_classification.SHIPPED_MODEL)
@options.data_dir
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@confusion_png_option
def evaluate_sentiment(model_path, data_dir, batch_size, confusion_png):
    """Accuracy of a sentiment model on the IMDB test reviews (or your class folders' test/).

    The report on stdout holds the confusion matrix (rows: true class); --confusion-png draws
    it too. A regression model is scored by MAE and RMSE instead, and has no matrix to draw.
    """
    evaluate_with(text_classification, model_path, "reviews", data_dir=data_dir, batch_size=batch_size,
                  confusion_png=confusion_png)


@evaluate.command("images")
@options.model_option(image_classification.SHIPPED_MODEL)
@click.option("--dataset", type=click.Choice(image_classification.DATASETS), default="cifar10",
              show_default=True)
@options.data_dir
@confusion_png_option
def evaluate_images(model_path, dataset, data_dir, confusion_png):
    """Accuracy of an image classifier on a data set's test split (and its confusion matrix).

    The report on stdout holds the confusion matrix (rows: true class); --confusion-png draws it too.

    \b
      toolkit evaluate images --data-dir ../shared/data/cifar10 --confusion-png report.confusion.png
    """
    evaluate_with(image_classification, model_path, "images", dataset=dataset, data_dir=data_dir,
                  confusion_png=confusion_png)


@evaluate.command("translation")
@options.model_option(translation.SHIPPED_MODEL)
@options.data_dir
@click.option("--split", default="test_2016_flickr", show_default=True, help="Multi30k split: val, test_2016_flickr, ...")
@click.option("--pairs", type=click.Path(dir_okay=False), default=None, help="Score on this tab-separated pair file instead.")
@click.option("--beam-size", type=click.IntRange(min=1, max=64), default=None, help="Default: the model's.")
@options.length_penalty
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
def evaluate_translation(model_path, data_dir, split, pairs, beam_size, length_penalty, batch_size):
    """sacreBLEU BLEU and chrF of a translator on a Multi30k split (or your pair file)."""
    evaluate_with(translation, model_path, "sentences", data_dir=data_dir, split=split, pairs=pairs,
                  beam_size=beam_size, length_penalty=length_penalty, batch_size=batch_size)


@evaluate.command("forecast")
@options.model_option(forecasting.SHIPPED_MODEL)
@click.option("--csv", type=click.Path(dir_okay=False), default=None, help="Default: the series the model was trained on.")
@click.option("--column", default=None)
@click.option("--time-column", default=None)
def evaluate_forecast(model_path, csv, column, time_column):
    """Test MAE of a forecaster (the last part of the series) next to the last-value and seasonal-naive forecasts."""
    evaluate_with(forecasting, model_path, "windows", csv=csv, column=column, time_column=time_column)


@evaluate.command("captions")
@options.model_option(captioning.SHIPPED_MODEL)
@options.data_dir
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True)
@click.option("--beam-size", type=click.IntRange(min=1, max=64), default=None, help="Default: the model's.")
@click.option("--examples", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the first images with generated and reference captions.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
def evaluate_captions(model_path, data_dir, split, beam_size, examples, batch_size):
    """BLEU-1..4 (sacreBLEU) and CIDEr-D of a captioner against every reference caption of a split."""
    evaluate_with(captioning, model_path, "images", data_dir=data_dir, split=split, beam_size=beam_size,
                  examples=examples, batch_size=batch_size)
