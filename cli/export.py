"""`toolkit export RUN`: a training run's best model as a SavedModel in TF Serving's layout, with its LiteRT form."""

import click


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Model name: the folder TF Serving serves it under (required, except with --into).")
@click.option("--version", type=int, default=None, help="Version number (default: the next free one). Never overwritten.")
@click.option("--to", "to", type=click.Path(file_okay=False), default="saved_models", show_default=True)
@click.option("--format", "export_format", type=click.Choice(["saved_model", "litert"]), default="saved_model",
              show_default=True,
              help="saved_model: the SavedModel, with its LiteRT form in assets.extra/litert/ where the model converts; "
                   "litert: the LiteRT form alone (model.tflite, litert.json, toolkit.json, vocabularies), for phones.")
@click.option("--into", type=click.Path(file_okay=False, exists=True), default=None,
              help="Add the LiteRT form to this SavedModel version, exported earlier from the same RUNs; its own files "
                   "stay untouched, and a version that has one already is refused.")
def export(run_dirs, name, version, to, export_format, into):
    """Write RUN's best model to TO/NAME/VERSION/ (a temporary folder, renamed into place).

    Several text-classifier (or translator) RUNs make one ensemble model that averages their
    probabilities (for translators: at every search step). Text and image classifiers and
    forecasters also get their LiteRT form, which `toolkit predict`, `classify` and `forecast`
    answer with, without importing TensorFlow; a model whose graph does not convert gets a note
    on stderr and its SavedModel alone.

    \b
      toolkit export runs/imdb --name sentiment
      toolkit export runs/cifar --name cifar10 --format litert --to phone_models
      toolkit export runs/imdb --into saved_models/sentiment/1
    """
    from toolkit.runtime import import_tensorflow

    if into and (name or version is not None or export_format != "saved_model"):
        raise click.UsageError("--into adds to an existing version: give no --name, --version or --format with it")
    if not into and not name:
        raise click.UsageError("Missing option '--name'.")
    import_tensorflow()
    from toolkit.tasks import add_litert, export_runs

    if into:
        click.echo(str(add_litert(run_dirs, into)))
    else:
        click.echo(str(export_runs(run_dirs, to, name, version, format=export_format)))
