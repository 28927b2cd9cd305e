"""`toolkit translate`: sentences from the command line, a file or standard input, translated."""

import itertools
import os
import sys

import click

from cli import options
from cli.output import Progress, echo, echo_answer
from toolkit.errors import ToolkitError

CHUNK = 512  # lines read, translated and printed at a time: memory stays bounded for any number of lines


@click.command()
@click.argument("sentences", nargs=-1)
@click.option("--file", "path", type=click.Path(dir_okay=True), default=None,
              help="Translate every line of this file (`-`: standard input).")
@options.model_option("translator_en_de")
@options.runtime
@options.beam_size("Hypotheses", 5)
@options.length_penalty
@options.json_output
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Sentences per search.")
@click.option("--attention-map", "attention_map", type=click.Path(dir_okay=False), default=None,
              help="Also draw the attention of each target token over the source tokens into this PNG; "
                   "one sentence only.")
def translate(sentences, path, model_path, runtime, beam_size, length_penalty, as_json, batch_size, attention_map):
    """Translate SENTENCES (or the lines of --file, or of standard input), one translation a line.

    Lines are read, translated and printed a chunk at a time, in order. A line that cannot be
    read as text gets an `Error:` line on stderr and an empty line on stdout (so output lines
    still match input lines); the exit code is then 1. A progress bar is drawn on stderr when
    it is a terminal.

    \b
      toolkit translate "A man in a blue shirt is riding a bike."
      toolkit translate --file sentences.txt --beam-size 1 --json
      toolkit translate "Two dogs play in the snow." --attention-map attention.png
    """
    from toolkit.tasks import load
    from toolkit.tasks.translation import KIND, LENGTH_CAP, SHIPPED_MODEL
    from toolkit.user_files import read_lines

    if sentences and path:
        raise click.UsageError("give sentences or --file, not both")
    if not sentences and path is None and sys.stdin.isatty():
        raise click.UsageError("give sentences, --file FILE, or lines on standard input")
    if attention_map and len(sentences) != 1:
        raise click.UsageError("--attention-map draws one sentence: give exactly one SENTENCE")
    lines = enumerate(sentences, 1) if sentences else read_lines(path or "-")
    translator, failed = None, False
    progress = Progress("lines", total=len(sentences) if sentences else lambda: count_lines(path or "-"))
    # A file that is missing, empty or binary raises ToolkitError here: one `Error:` line, exit code 1.
    while chunk := list(itertools.islice(lines, CHUNK)):
        good = [(number, text) for number, text in chunk if not isinstance(text, ToolkitError)]
        for number, text in good:
            words = len(text.split())
            if words >= LENGTH_CAP:
                echo(f"Warning: sentence {number} has {words} words; only its first {LENGTH_CAP - 1} "
                     "tokens are translated (the model translates sentences, not documents)", err=True)
        translator = translator or load(model_path or SHIPPED_MODEL, KIND, runtime)
        results = iter(translator.translate([text for _, text in good], beam_size=beam_size,
                                            length_penalty=length_penalty, batch_size=batch_size,
                                            attention=bool(attention_map)))
        for number, text in chunk:
            if isinstance(text, ToolkitError):
                echo(f"Error: {text}", err=True)
                failed = True
                if not as_json:
                    echo("")
                continue
            result = next(results)
            if attention_map:  # the one sentence's figure; the weights stay out of the printed answer
                from toolkit.plots import plot_translation_attention

                plot_translation_attention(result, attention_map)
                result = {k: result[k] for k in ("translation", "score")}
            failed |= not echo_answer({"source": text, **result}, result["translation"], as_json)
        progress.advance(len(chunk))
    progress.close()
    if failed:
        sys.exit(1)


def count_lines(path):
    """The lines `read_lines` will give for the file at `path`, counted a megabyte at a time; None for standard
    input, a pipe (either can be read once only) or a file that cannot be read (the reading reports it)."""
    if path == "-" or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            lines, last = 0, b"\n"
            while block := f.read(1 << 20):
                lines, last = lines + block.count(b"\n"), block[-1:]
    except OSError:
        return None
    return lines + (last != b"\n")  # a last line without a newline
