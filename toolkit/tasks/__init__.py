"""The model families, one module each; `TASKS` is the only place that lists them.

Every task module has the same shape:

    KIND            the kind written into run folders and exported models ("text_classifier", ...)
    COMMAND         its name on the command line (`toolkit train COMMAND`, `toolkit evaluate COMMAND`)
    SHIPPED_MODEL   the model under saved_models/ that its commands use by default
    ENSEMBLES       whether `export_run` accepts several runs (one model averaging them)
    TrainConfig     a frozen `toolkit.config.RunConfig`: every setting of a training run
    train(config, run_dir)                  -> metrics (a run folder, resumable)
    export_run(run_dirs, to, name, version) -> the SavedModel folder, `TO/NAME/VERSION`
    evaluate(model_path, ...)               -> a report on a data set's test split
    PREDICTOR       the class that answers with an exported model (`toolkit.serving.Predictor`)

Adding a family means writing its module and adding it to `TASKS`. Task modules import no
other task, and nothing below `toolkit.tasks` imports a task.
"""

from toolkit.errors import ToolkitError
from toolkit.tasks import captioning, forecasting, image_classification, text_classification, translation

TASKS = {task.KIND: task for task in (text_classification, image_classification, translation, captioning,
                                      forecasting)}


def task_for_kind(kind, what):
    """The task module of `kind`; `what` names where the kind was read, for the error."""
    if kind not in TASKS:
        raise ToolkitError(f"{what} is of unknown kind {kind!r} (this toolkit knows {', '.join(TASKS)})")
    return TASKS[kind]


def task_for_run(run_dir):
    """The task module that trained the run in `run_dir`, from its config.json."""
    from toolkit.training import read_run_config

    return task_for_kind(read_run_config(run_dir).get("kind"), f"the run in {run_dir}")


def load(model, kind=None):
    """The predictor of an exported model (`toolkit.load`).

    `model`: the name of a shipped or installed model ("sentiment"), a TF Serving model folder
    (its newest version) or a version folder. `kind` (e.g. "image_classifier") refuses a model
    of any other kind in one line: what each command of the CLI asks for.
    """
    from toolkit.serving import find_model, model_kind

    found, model_dir = model_kind(find_model(model))
    return task_for_kind(kind or found, f"the model in {model_dir}").PREDICTOR(model_dir)


def export_runs(run_dirs, to, name, version=None):
    """Exports the best model of a run (or an ensemble of runs, where the task has them) as `TO/NAME/VERSION`.

    `version` defaults to the next free one; an existing version is never overwritten.
    """
    from toolkit.export import next_version

    run_dirs = list(run_dirs)
    task = task_for_run(run_dirs[0])
    for run_dir in run_dirs[1:]:
        if task_for_run(run_dir) is not task:
            raise ToolkitError(f"{run_dir} is not a {task.KIND} run like {run_dirs[0]}: an ensemble's members "
                               "must be of one kind")
    if len(run_dirs) > 1 and not task.ENSEMBLES:
        ensembles = [t.KIND for t in TASKS.values() if t.ENSEMBLES]
        raise ToolkitError(f"ensembles of several runs are supported for {' and '.join(ensembles)} runs only")
    version = version if version is not None else next_version(to, name)
    return task.export_run(run_dirs if task.ENSEMBLES else run_dirs[0], to, name, version)
