"""`toolkit classify`: the class of images in files, globs, or paths read from standard input."""

import glob
import itertools
import os
import sys

import click

from cli import options
from cli.output import Progress, echo_answer
from toolkit.errors import ToolkitError

CHUNK = 256  # files decoded and classified at a time: memory stays bounded for any number of files


def expand(patterns, stdin):
    """Paths from arguments (a glob is expanded unless a file has that very name) and, for `-`, stdin lines."""
    for pattern in patterns:
        if pattern == "-":
            yield from (line.strip() for line in stdin if line.strip())
        elif any(c in pattern for c in "*?[") and not os.path.exists(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            yield from matches or [pattern]
        else:
            yield pattern


@click.command()
@click.argument("files", nargs=-1, required=True)
@options.model_option("cifar10_resnet")
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also list the K most probable classes (at most the model's top list, 5 for the shipped one).")
@options.json_output
def classify(files, model_path, top_k, as_json):
    """Classify the images in FILES (JPEG, PNG, GIF, BMP; globs allowed; `-` reads paths from stdin).

    Prints FILE, label and its probability, tab-separated (and the top K with --top-k).
    A bad file is reported on stderr and the others are still answered; the exit code is 1
    if any failed.
    """
    from toolkit.serving import models_dir
    from toolkit.tasks.image_classification import SHIPPED_MODEL, ImageClassifier

    classifier = ImageClassifier(model_path or models_dir() / SHIPPED_MODEL)
    failed = []
    warned = False
    progress = Progress("images")
    for names, pixels in decoded_chunks(expand(files, sys.stdin), classifier.decode, failed):
        for name, result in zip(names, classifier.predict_pixels(pixels)):
            if top_k > len(result["top_k"]) and not warned:
                click.echo(f"Note: the model ranks its top {len(result['top_k'])} classes; --top-k {top_k} shows those",
                           err=True)
                warned = True
            result["top_k"] = result["top_k"][:top_k]
            line = f"{name}\t{result['label']}\t{result['probability']:.4f}"
            if top_k > 1:
                line += "\t" + ", ".join(f"{t['label']} {t['probability']:.4f}" for t in result["top_k"])
            if not echo_answer({"file": name, **result}, line, as_json):
                failed.append(name)
        progress.advance(len(names))
    progress.close()
    if failed:
        sys.exit(1)


def decoded_chunks(paths, decode, failed):
    """(paths, pixels) of up to CHUNK readable images at a time, in order.

    A file that cannot be read or decoded gets one `Error:` line on stderr and is appended to
    `failed`; the others go on.
    """
    from toolkit.preprocessing.image import MAX_IMAGE_BYTES
    from toolkit.user_files import read_bytes

    paths = iter(paths)
    while chunk := list(itertools.islice(paths, CHUNK)):
        names, pixels = [], []
        for path in chunk:
            try:
                pixels.append(decode(read_bytes(path, MAX_IMAGE_BYTES), path))
                names.append(path)
            except ToolkitError as e:
                click.echo(f"Error: {e}", err=True)
                failed.append(path)
        if names:
            yield names, pixels
