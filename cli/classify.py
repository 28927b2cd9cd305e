"""`toolkit classify`: the class of images in files, folders, globs, or paths read from standard input."""

import sys

import click

from cli import options
from cli.inputs import answered_chunks, count_paths, expand
from cli.output import Progress, echo, echo_answer


@click.command()
@click.argument("files", nargs=-1, required=True)
@options.model_option("cifar10_resnet")
@options.runtime
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also list the K most probable classes (at most the model's top list, 5 for the shipped one).")
@options.json_output
def classify(files, model_path, runtime, top_k, as_json):
    """Classify the images in FILES (JPEG, PNG, GIF, BMP): files, folders (their image files,
    sorted by name), globs; `-` reads paths from stdin.

    Prints FILE, label and its probability, tab-separated (and the top K with --top-k), a
    chunk of images at a time, in order, so any number of files fits in memory. A bad file is
    reported on stderr and the others are still answered; the exit code is 1 if any failed.
    A progress bar is drawn on stderr when it is a terminal.

    \b
      toolkit classify photo.jpg shots/ 'more/**/*.png' --top-k 3
      find shots -name '*.jpg' | toolkit classify -
    """
    from toolkit.data.images import IMAGE_SUFFIXES
    from toolkit.tasks import load
    from toolkit.tasks.image_classification import KIND, SHIPPED_MODEL

    classifier = load(model_path or SHIPPED_MODEL, KIND, runtime)
    failed = []
    warned = False
    progress = Progress("images", total=lambda: count_paths(files, IMAGE_SUFFIXES, sys.stdin))
    for chunk in answered_chunks(expand(files, IMAGE_SUFFIXES, sys.stdin), classifier.predict):
        for name, result in chunk:
            if "error" in result:
                echo(f"Error: {result['error']}", err=True)
                failed.append(name)
                continue
            if top_k > len(result["top_k"]) and not warned:
                echo(f"Note: the model ranks its top {len(result['top_k'])} classes; --top-k {top_k} shows those",
                     err=True)
                warned = True
            result["top_k"] = result["top_k"][:top_k]
            line = f"{name}\t{result['label']}\t{result['probability']:.4f}"
            if top_k > 1:
                line += "\t" + ", ".join(f"{t['label']} {t['probability']:.4f}" for t in result["top_k"])
            if not echo_answer({"file": name, **result}, line, as_json):
                failed.append(name)
        progress.advance(len(chunk))
    progress.close()
    if failed:
        sys.exit(1)
