"""`toolkit predict`: the sentiment of reviews in files or on standard input."""

import itertools
import sys

import click

from cli import options
from cli.output import Progress, echo_answer
from toolkit.errors import ToolkitError

CHUNK = 1024  # reviews read and answered at a time: memory stays bounded for any number of files


@click.command()
@click.argument("files", nargs=-1, required=True)
@options.model_option("sentiment")
@options.json_output
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Reviews per forward pass.")
def predict(files, model_path, as_json, batch_size):
    """Classify the reviews in FILES (one review per file; `-` reads standard input).

    Prints FILE, label and the probability of that label, tab-separated. A bad file is
    reported on stderr and the others are still answered; the exit code is 1 if any failed.
    """
    from toolkit.serving import models_dir
    from toolkit.tasks.text_classification import SHIPPED_MODEL, TextClassifier
    from toolkit.user_files import read_text

    classifier, failed = None, False
    files = iter(files)
    progress = Progress("reviews")
    while chunk := list(itertools.islice(files, CHUNK)):
        names, texts = [], []
        for name in chunk:
            try:
                texts.append(read_text(name))
                names.append(name)
            except ToolkitError as e:
                click.echo(f"Error: {e}", err=True)
                failed = True
        if not texts:
            continue
        classifier = classifier or TextClassifier(model_path or models_dir() / SHIPPED_MODEL)
        for name, result in zip(names, classifier.predict(texts, batch_size=batch_size)):
            if "value" in result:  # a regression model
                line = f"{name}\t{result['value']:.4f}"
            else:
                line = f"{name}\t{result['label']}\t{result['probability']:.4f}"
            failed |= not echo_answer({"file": name, **result}, line, as_json)
        progress.advance(len(chunk))
    progress.close()
    if failed:
        sys.exit(1)
