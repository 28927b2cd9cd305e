"""`toolkit predict`: the sentiment of reviews in files or on standard input."""

import json
import sys

import click

from cli import options
from toolkit.errors import ToolkitError


@click.command()
@click.argument("files", nargs=-1, required=True)
@options.model_option("sentiment")
@options.json_output
@click.option("--batch-size", default=64, show_default=True, help="Reviews per forward pass.")
def predict(files, model_path, as_json, batch_size):
    """Classify the reviews in FILES (one review per file; `-` reads standard input).

    Prints FILE, label and the probability of that label, tab-separated. A bad file is
    reported on stderr and the others are still answered; the exit code is 1 if any failed.
    """
    from toolkit.serving import models_dir
    from toolkit.tasks.text_classification import SHIPPED_MODEL, TextClassifier
    from toolkit.user_files import read_text

    texts, names, failed = [], [], 0
    for name in files:
        try:
            texts.append(read_text(name))
            names.append(name)
        except ToolkitError as e:
            click.echo(f"Error: {e}", err=True)
            failed += 1
    if texts:
        classifier = TextClassifier(model_path or models_dir() / SHIPPED_MODEL)
        for name, result in zip(names, classifier.predict(texts, batch_size=batch_size)):
            if as_json:
                click.echo(json.dumps({"file": name, **result}))
            elif "value" in result:  # a regression model
                click.echo(f"{name}\t{result['value']:.4f}")
            else:
                click.echo(f"{name}\t{result['label']}\t{result['probability']:.4f}")
    if failed:
        sys.exit(1)
