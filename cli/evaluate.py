"""`toolkit evaluate FAMILY`: score an exported model on a test split."""

import json
from pathlib import Path

import click

from cli import options
from cli.output import Progress, echo_report
from toolkit.errors import ToolkitError
from toolkit.tasks import (
    captioning,
    forecasting,
    image_classification,
    language_model,
    text_classification,
    translation,
)


def evaluate_with(task, model_path, what, out=None, resolve=True, **kwargs):
    """`task.evaluate` on `model_path` (default: the task's shipped model); its report, printed as JSON and,
    with `out`, written there too.

    A bar counts the `what` scored on stderr when it is a terminal; stdout holds the report alone.
    `out`'s folder is made first: scoring can take minutes, and a path that cannot be written
    should fail before them, not after. `resolve=False` hands `model_path` to the task as given (a task that
    also scores training runs).
    """
    from toolkit.runtime import import_tensorflow
    from toolkit.serving import find_model

    if out:
        make_folder_of(out)
    import_tensorflow()
    with Progress(what) as progress:
        model = model_path or task.SHIPPED_MODEL
        report = task.evaluate(find_model(model) if resolve else model, on_progress=progress.advance, **kwargs)
    echo_report(report)
    if out:
        write_report(report, out)


def make_folder_of(path):
    """Creates the folder `path` goes into, as `toolkit.atomic.atomic_path` would; one line where it cannot be."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the folder would be
        raise ToolkitError(f"cannot write {path}: {folder} is a file, not a folder") from None
    except OSError as e:
        raise ToolkitError(f"cannot write {path}: {e.strerror or e}") from None


def write_report(report, path):
    """The report as `echo_report` prints it (strict JSON: no NaN), written to `path` atomically, so a reader
    never finds half of one; one line where it cannot be."""
    from toolkit.atomic import write_text

    try:
        write_text(path, json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    except OSError as e:  # a read-only folder, a full disk
        raise ToolkitError(f"cannot write {path}: {e.strerror or e}") from None


def confusion_png_beside(out, confusion_png):
    """`--confusion-png`, else REPORT.confusion.png beside `--out REPORT.json` (the JSON's stem), else None."""
    if confusion_png or not out:
        return confusion_png
    return str(Path(out).with_name(f"{Path(out).stem}.confusion.png"))


out_option = click.option(
    "--out", type=click.Path(dir_okay=False), default=None,
    help="Also write the report to this JSON file (atomically). For images and sentiment, the confusion matrix is "
         "drawn beside it, as NAME.confusion.png for --out NAME.json, unless --confusion-png names another path.")

confusion_png_option = click.option(
    "--confusion-png", type=click.Path(dir_okay=False), default=None,
    help="Also draw the confusion matrix (rows: true class, columns: predicted; counts, coloured by share of the "
         "row) as a PNG here. Default with --out NAME.json: NAME.confusion.png beside it.")


@click.group()
def evaluate():
    """Score an exported model on a data set's test split."""


@evaluate.command("sentiment")
@options.model_option(text_classification.SHIPPED_MODEL)
@options.runtime
@click.option("--dataset", metavar="tfds:NAME", default=None, callback=options.datasets(),
              help=f"Default: IMDB, or your class folders in --data-dir. {options.TFDS_HELP} E.g. tfds:imdb_reviews; "
                   "its test split is scored (its validation split where it has none).")
@options.data_dir
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--first-sentence", is_flag=True,
              help="Score each review's first sentence alone: how the model does on one-line reviews.")
@out_option
@confusion_png_option
def evaluate_sentiment(model_path, runtime, dataset, data_dir, batch_size, first_sentence, out, confusion_png):
    """Accuracy of a sentiment model on the IMDB test reviews (or your class folders' test/, or a tfds set's).

    The report on stdout holds the confusion matrix (rows: true class); --confusion-png draws
    it too, as does --out beside the report's file. A regression model is scored by MAE and
    RMSE instead, and has no matrix to draw.
    """
    evaluate_with(text_classification, model_path, "reviews", out=out, dataset=dataset, data_dir=data_dir,
                  batch_size=batch_size, confusion_png=confusion_png_beside(out, confusion_png), runtime=runtime,
                  first_sentence=first_sentence)


@evaluate.command("images")
@options.model_option(image_classification.SHIPPED_MODEL)
@options.runtime
@click.option("--dataset", metavar="[" + "|".join(image_classification.DATASETS) + "|tfds:NAME]", default="cifar10",
              show_default=True, callback=options.datasets(*image_classification.DATASETS),
              help=f"{options.TFDS_HELP} E.g. tfds:mnist; its test split is scored (its validation split where it has none), "
                   "read into memory at the model's image size.")
@options.data_dir
@out_option
@confusion_png_option
def evaluate_images(model_path, runtime, dataset, data_dir, out, confusion_png):
    """Accuracy of an image classifier on a data set's test split (and its confusion matrix).

    The report on stdout holds the confusion matrix (rows: true class); --confusion-png draws it
    too, as does --out beside the report's file (here report.json and report.confusion.png):

    \b
      toolkit evaluate images --data-dir ../shared/data/cifar10 --out report.json
      toolkit evaluate images --model models/mnist --dataset tfds:mnist --out mnist.json
    """
    evaluate_with(image_classification, model_path, "images", out=out, dataset=dataset, data_dir=data_dir,
                  confusion_png=confusion_png_beside(out, confusion_png), runtime=runtime)


@evaluate.command("translation")
@options.model_option(translation.SHIPPED_MODEL)
@options.data_dir
@click.option("--split", default="test_2016_flickr", show_default=True, help="Multi30k split: val, test_2016_flickr, ...")
@click.option("--pairs", type=click.Path(dir_okay=False), default=None, help="Score on this tab-separated pair file instead.")
@click.option("--beam-size", type=click.IntRange(min=1, max=options.MAX_BEAM), default=None, help="Default: the model's.")
@options.length_penalty
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@out_option
def evaluate_translation(model_path, data_dir, split, pairs, beam_size, length_penalty, batch_size, out):
    """sacreBLEU BLEU and chrF of a translator on a Multi30k split (or your pair file)."""
    evaluate_with(translation, model_path, "sentences", out=out, data_dir=data_dir, split=split, pairs=pairs,
                  beam_size=beam_size, length_penalty=length_penalty, batch_size=batch_size)


@evaluate.command("forecast")
@options.model_option(forecasting.SHIPPED_MODEL)
@options.runtime
@click.option("--csv", type=click.Path(dir_okay=False), default=None, help="Default: the series the model was trained on.")
@click.option("--column", default=None)
@click.option("--time-column", default=None)
@out_option
def evaluate_forecast(model_path, runtime, csv, column, time_column, out):
    """Test MAE of a forecaster (the last part of the series) next to the last-value and seasonal-naive forecasts."""
    evaluate_with(forecasting, model_path, "windows", out=out, csv=csv, column=column, time_column=time_column,
                  runtime=runtime)


@evaluate.command("captions")
@options.model_option(captioning.SHIPPED_MODEL)
@options.data_dir
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True)
@click.option("--beam-size", type=click.IntRange(min=1, max=options.MAX_BEAM), default=None, help="Default: the model's.")
@click.option("--examples", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG of the first images with generated and reference captions.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@out_option
def evaluate_captions(model_path, data_dir, split, beam_size, examples, batch_size, out):
    """BLEU-1..4 (sacreBLEU) and CIDEr-D of a captioner against every reference caption of a split."""
    evaluate_with(captioning, model_path, "images", out=out, data_dir=data_dir, split=split, beam_size=beam_size,
                  examples=examples, batch_size=batch_size)


@evaluate.command("language-model")
@click.option("--model", "model_path", default=None, metavar="NAME|PATH",
              help=f"A language model's run folder, or an exported one. Default: {language_model.SHIPPED_MODEL}.")
@options.data_dir
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Score this many test reviews, drawn at random with --seed (default: all 25,000).")
@click.option("--seed", type=int, default=0, show_default=True)
@out_option
def evaluate_language_model(model_path, data_dir, batch_size, sample, seed, out):
    """Perplexity of a language model on IMDB's 25,000 test reviews (which it never trained on), word by word."""
    evaluate_with(language_model, model_path, "reviews", out=out, resolve=False, data_dir=data_dir,
                  batch_size=batch_size, sample=sample, seed=seed)
