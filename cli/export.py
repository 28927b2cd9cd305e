"""`toolkit export RUN`: a training run's best model as a SavedModel in TF Serving's layout."""

from pathlib import Path

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
    from toolkit import images, sentiment
    from toolkit.errors import ToolkitError
    from toolkit.export import next_version
    from toolkit.io import read_json

    config = Path(run_dir) / "config.json"
    if not config.is_file():
        raise ToolkitError(f"{run_dir} is not a training run folder (no config.json)")
    kind = read_json(config).get("kind")
    families = {sentiment.KIND: sentiment.export_run, images.KIND: images.export_run}
    if kind not in families:
        raise ToolkitError(f"{run_dir} is a run of unknown kind {kind!r}")
    path = families[kind](run_dir, to, name, version if version is not None else next_version(to, name))
    click.echo(str(path))
