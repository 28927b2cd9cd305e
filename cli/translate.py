"""`toolkit translate`: sentences from the command line, a file or standard input, translated."""

import json
import sys

import click

from cli import options
from toolkit.errors import ToolkitError


@click.command()
@click.argument("sentences", nargs=-1)
@click.option("--file", "path", type=click.Path(dir_okay=True), default=None,
              help="Translate every line of this file (`-`: standard input).")
@options.model_option("translator_en_de")
@options.beam_size("Hypotheses", 5)
@options.length_penalty
@options.json_output
@click.option("--batch-size", default=64, show_default=True, help="Sentences per search.")
def translate(sentences, path, model_path, beam_size, length_penalty, as_json, batch_size):
    """Translate SENTENCES (or the lines of --file, or of standard input), one translation a line.

    \b
      toolkit translate "A man in a blue shirt is riding a bike."
      toolkit translate --file sentences.txt --beam-size 1 --json
    """
    from toolkit.serving import models_dir
    from toolkit.tasks.translation import LENGTH_CAP, SHIPPED_MODEL, Translator
    from toolkit.user_files import read_text

    if sentences and path:
        raise click.UsageError("give sentences or --file, not both")
    if not sentences:
        if path is None and sys.stdin.isatty():
            raise click.UsageError("give sentences, --file FILE, or lines on standard input")
        source = path or "-"
        try:
            text = read_text(source)
        except ToolkitError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(1)
        sentences = text.splitlines()
    for number, sentence in enumerate(sentences, 1):
        words = len(sentence.split())
        if words >= LENGTH_CAP:
            click.echo(f"Warning: sentence {number} has {words} words; only its first {LENGTH_CAP - 1} tokens "
                       "are translated (the model translates sentences, not documents)", err=True)
    translator = Translator(model_path or models_dir() / SHIPPED_MODEL)
    results = translator.translate(sentences, beam_size=beam_size, length_penalty=length_penalty,
                                   batch_size=batch_size)
    for sentence, result in zip(sentences, results):
        if as_json:
            click.echo(json.dumps({"source": sentence, **result}, ensure_ascii=False))
        else:
            click.echo(result["translation"])
