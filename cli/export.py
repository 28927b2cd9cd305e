"""`toolkit export RUN`: a training run's best model as a SavedModel in TF Serving's layout."""

import click


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--name", required=True, help="Model name: the folder TF Serving serves it under.")
@click.option("--version", type=int, default=None, help="Version number (default: the next free one). Never overwritten.")
@click.option("--to", "to", type=click.Path(file_okay=False), default="saved_models", show_default=True)
def export(run_dirs, name, version, to):
    """Write RUN's best model to TO/NAME/VERSION/ (a temporary folder, renamed into place).

    Several text-classifier (or translator) RUNs make one ensemble model that averages their
    probabilities (for translators: at every search step).
    """
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.tasks import export_runs

    click.echo(str(export_runs(run_dirs, to, name, version)))
