"""`toolkit predict`: the sentiment of reviews in files, folders, globs, or on standard input."""

import sys

import click

from cli import options
from cli.inputs import count_paths, expand
from cli.output import Progress, echo, echo_answer
from toolkit.errors import ToolkitError

CHUNK = 1024  # reviews read and answered at a time, or CHUNK_TEXT characters of them, whichever comes first:
CHUNK_TEXT = 32_000_000  # memory stays bounded for any number of files and any size up to read_text's limit
TEXT_SUFFIXES = (".txt",)  # what a folder argument means: its *.txt files


@click.command()
@click.argument("files", nargs=-1, required=True)
@options.model_option("sentiment")
@options.runtime
@options.json_output
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Reviews per forward pass.")
def predict(files, model_path, runtime, as_json, batch_size):
    """Classify the reviews in FILES, one review per file: files, folders (their *.txt files,
    sorted by name), globs (quoted, expanded by toolkit: no limit on their number); `-` reads
    one review from standard input.

    Prints FILE, label and the probability of that label, tab-separated, a chunk of reviews at
    a time, in order, so any number of files fits in memory. A bad file is reported on stderr
    and the others are still answered; the exit code is 1 if any failed. A progress bar is
    drawn on stderr when it is a terminal.

    \b
      toolkit predict review.txt
      toolkit predict reviews/ --json
      toolkit predict 'imdb/test/*/*.txt'
    """
    from toolkit.tasks import load
    from toolkit.tasks.text_classification import KIND, SHIPPED_MODEL

    classifier, failed = None, False
    progress = Progress("reviews", total=lambda: count_paths(files, TEXT_SUFFIXES))
    for chunk in text_chunks(expand(files, TEXT_SUFFIXES)):
        for name, text in chunk:
            if isinstance(text, ToolkitError):
                echo(f"Error: {text}", err=True)
                failed = True
        good = [(name, text) for name, text in chunk if not isinstance(text, ToolkitError)]
        if good:
            classifier = classifier or load(model_path or SHIPPED_MODEL, KIND, runtime)
            for (name, _), result in zip(good, classifier.predict([text for _, text in good], batch_size=batch_size)):
                if "value" in result:  # a regression model
                    line = f"{name}\t{result['value']:.4f}"
                else:
                    line = f"{name}\t{result['label']}\t{result['probability']:.4f}"
                failed |= not echo_answer({"file": name, **result}, line, as_json)
        progress.advance(len(chunk))
    progress.close()
    if failed:
        sys.exit(1)


def text_chunks(paths):
    """Lists of (path, text) for up to CHUNK reviews (or CHUNK_TEXT characters) at a time, in order,
    reading from `paths` only as each list is asked for.

    A file that cannot be read as text, or a ToolkitError that `expand` gave in place of a
    folder's files, comes as a ToolkitError in the text's place, so the caller reports it and
    goes on.
    """
    from toolkit.user_files import read_text

    chunk, size = [], 0
    for path in paths:
        try:
            if isinstance(path, ToolkitError):
                raise path
            text = read_text(path)
            size += len(text)
        except ToolkitError as e:
            text = e
        chunk.append((path, text))
        if len(chunk) == CHUNK or size >= CHUNK_TEXT:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
