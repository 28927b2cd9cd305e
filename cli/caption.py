"""`toolkit caption`: a sentence describing each image in files, folders, globs, or paths read from standard input."""

import sys

import click

from cli import options
from cli.inputs import count_paths, decoded_chunks, expand
from cli.output import Progress, echo_answer


@click.command()
@click.argument("files", nargs=-1, required=True)
@options.model_option("captioner")
@options.beam_size("Captions", 3)
@options.length_penalty
@options.json_output
def caption(files, model_path, beam_size, length_penalty, as_json):
    """Caption the images in FILES (JPEG, PNG, GIF, BMP): files, folders (their image files,
    sorted by name), globs; `-` reads paths from stdin.

    Prints FILE and its caption, tab-separated (--json adds the caption's score: its
    log-probability per word), a chunk of images at a time, in order. A bad file is reported
    on stderr and the others are still captioned; the exit code is 1 if any failed. A progress
    bar is drawn on stderr when it is a terminal.

    \b
      toolkit caption photo.jpg more/*.jpg --beam-size 5
      toolkit caption holiday/
    """
    from toolkit.data.images import IMAGE_SUFFIXES
    from toolkit.serving import models_dir
    from toolkit.tasks.captioning import SHIPPED_MODEL, Captioner

    captioner = Captioner(model_path or models_dir() / SHIPPED_MODEL)
    failed = []
    progress = Progress("images", total=lambda: count_paths(files, IMAGE_SUFFIXES, sys.stdin))
    for names, pixels, read in decoded_chunks(expand(files, IMAGE_SUFFIXES, sys.stdin), captioner.decode, failed):
        results = captioner.caption_pixels(pixels, beam_size=beam_size, length_penalty=length_penalty)
        for name, result in zip(names, results):
            if not echo_answer({"file": name, **result}, f"{name}\t{result['caption']}", as_json):
                failed.append(name)
        progress.advance(read)
    progress.close()
    if failed:
        sys.exit(1)
