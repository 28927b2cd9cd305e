"""`toolkit export RUN`: a training run's best model as a SavedModel in TF Serving's layout."""

from pathlib import Path

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
    from toolkit import captioning, forecast, images, sentiment, translation
    from toolkit.errors import ToolkitError
    from toolkit.export import next_version
    from toolkit.io import read_json

    config = Path(run_dirs[0]) / "config.json"
    if not config.is_file():
        raise ToolkitError(f"{run_dirs[0]} is not a training run folder (no config.json)")
    kind = read_json(config).get("kind")
    version = version if version is not None else next_version(to, name)
    if kind == sentiment.KIND:
        path = sentiment.export_run(run_dirs, to, name, version)
    elif kind == images.KIND and len(run_dirs) == 1:
        path = images.export_run(run_dirs[0], to, name, version)
    elif kind == translation.KIND:
        path = translation.export_run(run_dirs, to, name, version)
    elif kind == forecast.KIND and len(run_dirs) == 1:
        path = forecast.export_run(run_dirs[0], to, name, version)
    elif kind == captioning.KIND and len(run_dirs) == 1:
        path = captioning.export_run(run_dirs[0], to, name, version)
    elif kind in (images.KIND, forecast.KIND, captioning.KIND):
        raise ToolkitError("ensembles of several runs are supported for text classifiers and translators only")
    else:
        raise ToolkitError(f"{run_dirs[0]} is a run of unknown kind {kind!r}")
    click.echo(str(path))
