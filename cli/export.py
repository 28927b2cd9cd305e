"""`toolkit export RUN`: a training run's best model as a SavedModel in TF Serving's layout."""

import click


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="Model name: the folder TF Serving serves it under.")
@click.option("--version", type=int, default=None, help="Version number (default: the next free one). Never overwritten.")
@click.option("--to", "to", type=click.Path(file_okay=False), default="saved_models", show_default=True)
def export(run_dir, name, version, to):
    """Write RUN's best model to TO/NAME/VERSION/ (a temporary folder, renamed into place)."""
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.export import next_version
    from toolkit.sentiment import export_run

    path = export_run(run_dir, to, name, version if version is not None else next_version(to, name))
    click.echo(str(path))
