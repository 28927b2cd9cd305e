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
    LITE_PREDICTOR  where the model converts to LiteRT: the class that answers with its LiteRT form
                    (`toolkit.lite.LitePredictor`), the same answers without TensorFlow
    litert_form(run_dirs) -> `toolkit.lite.convert.LiteForm`, where the model converts (`toolkit export` writes
                    it beside the SavedModel)

Adding a family means writing its module and adding it to `TASKS`. Task modules import no
other task, and nothing below `toolkit.tasks` imports a task.
"""

from toolkit.errors import ToolkitError
from toolkit.tasks import (
    captioning,
    forecasting,
    image_classification,
    language_model,
    text_classification,
    translation,
)

TASKS = {task.KIND: task for task in (text_classification, image_classification, translation, captioning,
                                      forecasting, language_model)}


def task_for_kind(kind, what):
    """The task module of `kind`; `what` names where the kind was read, for the error."""
    if kind not in TASKS:
        raise ToolkitError(f"{what} is of unknown kind {kind!r} (this toolkit knows {', '.join(TASKS)})")
    return TASKS[kind]


def task_for_run(run_dir):
    """The task module that trained the run in `run_dir`, from its config.json."""
    from toolkit.training import read_run_config

    return task_for_kind(read_run_config(run_dir).get("kind"), f"the run in {run_dir}")


def load(model, kind=None, runtime="auto"):
    """The predictor of an exported model (`toolkit.load`).

    `model`: the name of a shipped or installed model ("sentiment"), a TF Serving model folder
    (its newest version) or a version folder. `kind` (e.g. "image_classifier") refuses a model
    of any other kind in one line: what each command of the CLI asks for. `runtime`: "auto"
    answers through LiteRT where the model has its LiteRT form and the task a light predictor
    (`LITE_PREDICTOR`; no TensorFlow import), else through the SavedModel; "litert" and
    "tensorflow" insist (`toolkit.lite.choose_runtime`).
    """
    from toolkit.lite import predictor
    from toolkit.serving import find_model, model_kind

    found, model_dir = model_kind(find_model(model))
    task = task_for_kind(kind or found, f"the model in {model_dir}")
    return predictor(model_dir, runtime, task.PREDICTOR, getattr(task, "LITE_PREDICTOR", None))


def export_runs(run_dirs, to, name, version=None, format="saved_model"):
    """Exports the best model of a run (or an ensemble of runs, where the task has them) as `TO/NAME/VERSION`.

    `version` defaults to the next free one; an existing version is never overwritten. `format`
    "saved_model" writes the SavedModel (TF Serving) with its LiteRT form beside it where the model
    converts; "litert" the LiteRT form alone (`toolkit.lite`: for phones, and the light path).
    """
    from toolkit.export import next_version, write_lite_model

    task, runs = _runs_of_one_task(run_dirs)
    if format == "litert":
        form = _litert_form(task, runs)
        return write_lite_model(form, to, name, version if version is not None else next_version(to, name))
    if format != "saved_model":
        raise ToolkitError(f"format must be saved_model or litert. Received: {format!r}")
    version = version if version is not None else next_version(to, name)
    return task.export_run(runs, to, name, version)


def add_litert(run_dirs, model_dir):
    """Adds the LiteRT form of the runs' model to `model_dir`, a SavedModel version exported from those runs
    (`toolkit export RUN --into VERSION`): its own files stay as they are (`toolkit.lite.convert.add_to_version`)."""
    from toolkit.lite.convert import add_to_version
    from toolkit.serving import model_kind

    task, runs = _runs_of_one_task(run_dirs)
    kind, _ = model_kind(model_dir)
    if task_for_kind(kind, f"the model in {model_dir}") is not task:
        raise ToolkitError(f"--into {model_dir} holds a {kind!r} model, the runs a {task.KIND!r} one")
    return add_to_version(_litert_form(task, runs), model_dir)


def _litert_form(task, runs):
    if not hasattr(task, "litert_form"):
        why = getattr(task, "NO_LITERT", "")
        raise ToolkitError(f"{task.KIND} models have no LiteRT form yet{f' ({why})' if why else ''}; "
                           "export them as a SavedModel")
    return task.litert_form(runs)


def _runs_of_one_task(run_dirs):
    """(the task, what its export functions take: the list of runs where it has ensembles, else the one run)."""
    run_dirs = list(run_dirs)
    task = task_for_run(run_dirs[0])
    for run_dir in run_dirs[1:]:
        if task_for_run(run_dir) is not task:
            raise ToolkitError(f"{run_dir} is not a {task.KIND} run like {run_dirs[0]}: an ensemble's members "
                               "must be of one kind")
    if len(run_dirs) > 1 and not task.ENSEMBLES:
        ensembles = [t.KIND for t in TASKS.values() if t.ENSEMBLES]
        raise ToolkitError(f"ensembles of several runs are supported for {' and '.join(ensembles)} runs only")
    return task, run_dirs if task.ENSEMBLES else run_dirs[0]
