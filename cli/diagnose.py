"""`toolkit diagnose gradients`: how far back through time a recurrent model's gradient reaches."""

import click

from cli import options
from cli.output import echo_report


@click.group()
def diagnose():
    """Measure how recurrent models learn: how far back through time the gradient reaches."""


@diagnose.command()
@click.option("--cell", "cells", type=click.Choice(["simple_rnn", "lstm", "gru"]), multiple=True,
              help="Cells to compare, freshly initialised (repeatable; default: all three).")
@click.option("--activation", default="tanh", show_default=True, help="SimpleRNN state activation (tanh, relu, ...).")
@options.recurrent_init
@click.option("--model", "run_dirs", type=click.Path(file_okay=False), multiple=True,
              help="A `toolkit train sentiment` run folder trained with --bigram-buckets 0: measure its trained "
                   "model instead (repeatable).")
@click.option("--length", default=200, show_default=True, help="T: reviews are cut to their first T tokens.")
@click.option("--reviews", default=32, show_default=True, help="Reviews averaged over (IMDB train split).")
@click.option("--units", default=64, show_default=True)
@click.option("--embedding-dim", default=128, show_default=True)
@click.option("--seed", default=0, show_default=True)
@options.data_dir
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default="gradients.png", show_default=True,
              help="Where to write the PNG (log scale, a curve per model).")
@options.json_output
def gradients(cells, activation, recurrent_init, run_dirs, length, reviews, units, embedding_dim, seed, data_dir, plot_path, as_json):
    """||dh_T/dx_t|| and ||dL/dx_t|| for t = 1..T, averaged over real IMDB reviews.

    \b
      toolkit diagnose gradients --data-dir ../shared/data/imdb
      toolkit diagnose gradients --cell simple_rnn --activation relu
      toolkit diagnose gradients --model runs/zoo-lstm --model runs/zoo-simple_rnn
    """
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit import diagnostics

    if cells and run_dirs:
        raise click.UsageError("give --cell (fresh models) or --model (trained runs), not both")
    report = diagnostics.diagnose(cells or diagnostics.CELLS, activation, length, reviews, units, embedding_dim,
                                  run_dirs, data_dir, seed, recurrent_init)
    diagnostics.plot(report, plot_path)
    if as_json:
        echo_report(report)
    else:
        click.echo(diagnostics.table(report))
        click.echo(f"Plot: {plot_path}")
