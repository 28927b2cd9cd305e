"""`toolkit caption`: a sentence describing each image in files, folders, globs, or paths read from standard input."""

import functools
import itertools
import sys

import click

from cli import options
from cli.inputs import answered_chunks, count_paths, expand
from cli.output import Progress, echo, echo_answer


@click.command()
@click.argument("files", nargs=-1, required=True)
@options.model_option("captioner")
@options.runtime
@options.beam_size("Captions", 3)
@options.length_penalty
@click.option("--attention-map", "attention_map", type=click.Path(dir_okay=False), default=None,
              help="Also draw where the model looked for each word it wrote (one panel a word) into this PNG; "
                   "one image only.")
@options.json_output
def caption(files, model_path, runtime, beam_size, length_penalty, attention_map, as_json):
    """Caption the images in FILES (JPEG, PNG, GIF, BMP): files, folders (their image files,
    sorted by name), globs; `-` reads paths from stdin.

    Prints FILE and its caption, tab-separated (--json adds the caption's score: its
    log-probability per word), a chunk of images at a time, in order. A bad file is reported
    on stderr and the others are still captioned; the exit code is 1 if any failed. A progress
    bar is drawn on stderr when it is a terminal.

    \b
      toolkit caption photo.jpg more/*.jpg --beam-size 5
      toolkit caption holiday/
      toolkit caption dog.jpg --attention-map dog_attention.png
    """
    from toolkit.data.images import IMAGE_SUFFIXES
    from toolkit.tasks import load
    from toolkit.tasks.captioning import KIND, SHIPPED_MODEL

    paths = expand(files, IMAGE_SUFFIXES, sys.stdin)
    if attention_map:
        paths = list(itertools.islice(paths, 2))  # what the arguments name, folders and globs expanded
        if len(paths) != 1:
            raise click.UsageError("--attention-map draws the words of one image: give one image file")
        from toolkit.plots import plot_caption_attention
    captioner = load(model_path or SHIPPED_MODEL, KIND, runtime)
    failed = []
    progress = Progress("images", total=lambda: count_paths(files, IMAGE_SUFFIXES, sys.stdin))
    answer = functools.partial(captioner.caption, beam_size=beam_size, length_penalty=length_penalty,
                               attention=bool(attention_map))
    for chunk in answered_chunks(paths, answer):
        for name, result in chunk:
            if "error" in result:
                echo(f"Error: {result['error']}", err=True)
                failed.append(name)
                continue
            if attention_map:  # drawn over the pixels the model saw
                plot_caption_attention(captioner.pixels(name), result, attention_map)
                result = {k: v for k, v in result.items() if k not in ("tokens", "attention")}
            if not echo_answer({"file": name, **result}, f"{name}\t{result['caption']}", as_json):
                failed.append(name)
        progress.advance(len(chunk))
    progress.close()
    if failed:
        sys.exit(1)
