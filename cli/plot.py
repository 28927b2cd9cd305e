"""`toolkit plot RUN...`: learning curves of several runs in one figure."""

import click


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--metric", default="accuracy", show_default=True, help="A column of the runs' history.csv.")
@click.option("--out", "path", type=click.Path(dir_okay=False), required=True, help="PNG file to write.")
@click.option("--title", default=None)
def plot(runs, metric, path, title):
    """Compare runs: training (dashed) and validation (solid) curves of METRIC, one colour per run."""
    from toolkit.training import plot_runs

    plot_runs(runs, path, metric=metric, title=title)
    click.echo(path)
