"""The one place that calls `fit()`: the run skeleton, optimiser, checkpoints, resume, early stopping, history.

Every task's `train()` has the same shape, written once here as `Run`:

    with Run(run_dir, KIND, config) as run:    # checks every setting (and a resumed run's), seeds, locks
        ...                                    # the task's own part: data, vocabulary, model
        run.write_config(class_names=...)      # config.json (a resumed run's data must be the same)
        model, results = run.fit(model, train_batches, validation_batches)
        return run.finish(results)             # scores added by the task, then metrics.json

A run folder holds everything about one training run:

    RUN/config.json           what was trained, on what: kind, facts about the data, settings, command
    RUN/checkpoint/           the model after the latest finished epoch, with its optimiser state
    RUN/best.keras            the model of the best validation epoch (what gets exported)
    RUN/history.csv           one row per epoch: losses, metrics, learning rate, seconds
    RUN/learning_curves.png   the same, plotted
    RUN/metrics.json          test-split metrics of best.keras, written at the end

Every file is written to a temporary path and renamed, so a run killed at any moment
(Ctrl-C, `kill`, a power cut) leaves a consistent folder, and running the same command
again resumes after the last finished epoch.
"""

import csv
import io
import json
import math
import sys
import time
import warnings
from pathlib import Path

import keras

from toolkit.atomic import atomic_path, folder_lock, read_json, remove_leftovers, write_json, write_text
from toolkit.config import OPTIMIZERS, SCHEDULES
from toolkit.errors import ToolkitError

BEST_MODEL = "best.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


class Run:
    """One training run folder, from the checks before anything is written to `metrics.json`.

    `config` is the task's `TrainConfig` (a `toolkit.config.RunConfig`). Creating a `Run`
    validates every setting, places the run (`config.strategy`, see `toolkit.distribute`)
    and, for a folder that already holds a run, refuses other settings (only those in
    `config.RESUMABLE` may change), then seeds every random generator. Nothing is written
    until `write_config`. Used as a context manager, it owns the folder while it trains: a
    second training into it fails at once, and what killed writes left behind is removed;
    models built inside compute in `config.precision` under the run's strategy.

    In a multi-worker run only the chief writes `run_dir`; every other worker works in a
    private copy of it (`self.run_dir`, deleted at the end), so the task's code is the same
    on every worker and a restarted cluster resumes from the chief's last checkpoint.
    """

    # Facts about the data that may differ when a run resumes: where it trained, not what it learnt from.
    VOLATILE_FACTS = ("backend", "command")

    def __init__(self, run_dir, kind, config):
        from toolkit import distribute

        config.validate()
        self.kind, self.config = kind, config
        self.folder = self.run_dir = Path(run_dir)  # the run folder; `run_dir` is where this process writes
        self.previous = check_run_folder(self.folder)
        check_same_settings(self.folder, config.settings(), may_change=config.RESUMABLE + config.unused_settings(),
                            defaults=type(config).absent(), renamed=config.RENAMED)
        self.placement = distribute.place(config.strategy)  # before TensorFlow runs an op
        if self.placement.name == "data-parallel" and config.batch_size % self.placement.replicas:
            self.placement.close()
            raise ToolkitError(f"--batch-size {config.batch_size} does not split over {self.placement.replicas} "
                               f"devices: give a multiple of {self.placement.replicas}")
        keras.utils.set_random_seed(config.seed)
        self._stack = None

    def __enter__(self):
        import contextlib
        import tempfile

        from toolkit import distribute

        stack = contextlib.ExitStack()
        stack.callback(self.placement.close)
        try:
            if not self.placement.is_chief:
                task, index = self.placement.task
                self.run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"toolkit-{task}{index}-")))
                copy_for_worker(self.folder, self.run_dir)
            stack.enter_context(folder_lock(self.run_dir, f"{self.run_dir} is being trained by another process right "
                                                          "now; wait for it, or use another --out folder"))
            for folder in (self.run_dir, self.run_dir / "checkpoint"):
                remove_leftovers(folder)
            stack.enter_context(distribute.precision(self.config.precision))
            stack.enter_context(self.placement.scope())
        except BaseException:
            stack.close()
            raise
        if self.placement.strategy is not None or self.placement.replicas > 1:
            print(self.placement.describe(), file=sys.stderr)
        self._stack = stack
        return self

    def __exit__(self, *exc):
        stack, self._stack = self._stack, None
        self.run_dir = self.folder
        return stack.__exit__(*exc)

    def cache_folder(self, folder):
        """Where this process keeps cache files meant for `folder` (a `--cache DIR` shared by runs): the folder
        itself, except on a worker that is not the chief, which keeps its own in its private copy, so that
        two workers never write one cache."""
        if folder is None or self.placement.is_chief:
            return folder
        return self.run_dir / "worker-cache"

    def write_config(self, **facts):
        """`config.json`: the kind, what the task knows about its data (`facts`), the settings, the command.

        A resumed run whose data differ (other class names, another fingerprint, ...) is refused,
        naming what changed: its checkpoint answers another question.
        """
        if self.previous is not None:
            changed = [k for k, v in facts.items() if k in self.previous and k not in self.VOLATILE_FACTS
                       and _jsonable(v) != self.previous[k]]
            if changed:
                raise ToolkitError(f"{self.run_dir} holds a run trained on other data ({_changes(changed, self.previous, facts)}); "
                                   "use a new --out folder, or the same data to resume it")
        write_json(self.run_dir / CONFIG_FILE, {"kind": self.kind, **facts, "train": self.config.settings(),
                                                "command": sys.argv})

    def optimizer(self, *, steps_per_epoch=None, train=None, warmup_epochs=0, **kwargs):
        """The config's optimiser and learning-rate schedule, with gradient clipping at `clip_norm`.

        A schedule needs the number of steps: give `steps_per_epoch`, or the `train` batches,
        which are then counted once (bucketed datasets do not know their length). Under
        mixed_float16 it is wrapped in a `LossScaleOptimizer` (stored so in checkpoints).
        """
        config = self.config
        clip_norm = config.clip_norm
        if config.schedule == "constant" and not warmup_epochs:
            optimizer = make_optimizer(config.optimizer, config.learning_rate, clip_norm, **kwargs)
        else:
            if steps_per_epoch is None:
                steps_per_epoch = int(train.reduce(0, lambda n, _: n + 1))
            optimizer = make_optimizer(config.optimizer, config.learning_rate, clip_norm,
                                       schedule=config.schedule, total_steps=config.epochs * steps_per_epoch,
                                       warmup_steps=min(warmup_epochs, config.epochs / 2) * steps_per_epoch, **kwargs)
        if config.precision == "mixed_float16":
            optimizer = SyncedLossScaleOptimizer(optimizer)
        return optimizer

    def fit(self, model, train, validation, monitor="val_loss", mode="min", summary=True):
        """Fits the compiled `model` (resuming an interrupted run); (best model, results so far)."""
        if summary:
            model.summary(print_fn=lambda line, **_: print(line, file=sys.stderr))
        distribute = self.placement.distribute
        with self.placement.lost_workers_reported(self.folder):
            model, history = fit(model, distribute(train), distribute(validation), self.run_dir,
                                 epochs=self.config.epochs, patience=self.config.patience, monitor=monitor, mode=mode)
        return model, {"parameters": model.count_params(), "epochs_trained": len(history),
                       "best_epoch": best_epoch(history, monitor, mode), "train_seconds": training_seconds(history)}

    def finish(self, results):
        """Writes `metrics.json` (the task has added its test scores) and returns `results`."""
        write_json(self.run_dir / METRICS_FILE, results)
        return results


def copy_for_worker(run_dir, copy):
    """Copies what a non-chief worker resumes from (the chief's checkpoint, best model, vocabulary...) into `copy`.

    Only a run that has finished an epoch is copied: before that, every worker builds the
    same start from the same seeded data, and the chief may still be writing its first files.
    """
    import shutil

    if not (Path(run_dir) / "checkpoint" / "state.json").is_file():
        return
    shutil.copytree(run_dir, copy, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names if n.startswith(".") and ".tmp" in n])


def check_run_folder(run_dir):
    """The config of the run in `run_dir`, or None for a new run; refuses a folder that holds something else.

    A new run goes into a folder that does not exist or is empty; anything else must be a run
    folder (config.json), so that `--out` never overwrites a user's files.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ToolkitError(f"--out {run_dir} is a file, not a folder")
    if (run_dir / CONFIG_FILE).is_file():
        return read_run_config(run_dir)
    if run_dir.is_dir() and any(not p.name.startswith(".") for p in run_dir.iterdir()):
        raise ToolkitError(f"{run_dir} is not empty and holds no training run (no {CONFIG_FILE}); "
                           "give --out a new or empty folder")
    return None


def data_fingerprint(*parts):
    """`{"examples", "sha256"}` of a run's training data: numpy arrays and sequences of strings or bytes.

    Stored in config.json, it lets a resumed run notice that its data changed.
    """
    import hashlib

    import numpy as np

    digest, examples = hashlib.sha256(), None
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
            count = len(part)
        else:
            for item in part:
                item = item if isinstance(item, bytes) else str(item).encode("utf-8")
                digest.update(len(item).to_bytes(8, "little") + item)
            count = len(part)
        examples = count if examples is None else examples
    return {"examples": examples, "sha256": digest.hexdigest()}


def _jsonable(value):
    """`value` as it reads back from config.json (tuples become lists)."""
    return json.loads(json.dumps(value))


def _changes(keys, before, after):
    def short(value):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."

    return "; ".join(f"{k}: {short(before[k])} -> {short(_jsonable(after[k]))}" for k in keys)


def learning_rate_schedule(learning_rate, schedule="constant", total_steps=None, warmup_steps=0):
    """A constant rate, cosine decay to zero, or steps of x0.1 at 50% and 75% of training; with linear warm-up.

    Warm-up ramps the rate from 0 over `warmup_steps`, which keeps the first steps of a
    large-rate SGD run from blowing up batch-norm statistics and weights.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}. Received: schedule={schedule!r}")
    if schedule == "constant" and not warmup_steps:
        return learning_rate
    if not total_steps or total_steps <= warmup_steps:
        raise ValueError(f"a {schedule} schedule needs total_steps > warmup_steps. "
                         f"Received: total_steps={total_steps!r}, warmup_steps={warmup_steps!r}")
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else learning_rate, total_steps - warmup_steps,
            warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
    return WarmupPiecewise(learning_rate, total_steps, warmup_steps, schedule)


@keras.saving.register_keras_serializable(package="toolkit")
class WarmupPiecewise(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then constant (`constant`) or x0.1 at 50% and 75% of the steps (`step`)."""

    def __init__(self, learning_rate, total_steps, warmup_steps=0, kind="step"):
        self.learning_rate, self.total_steps, self.warmup_steps, self.kind = learning_rate, total_steps, warmup_steps, kind

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = keras.ops.convert_to_tensor(self.learning_rate, "float32")
        if self.kind == "step":
            rate = keras.ops.where(step >= 0.5 * self.total_steps, rate * 0.1, rate)
            rate = keras.ops.where(step >= 0.75 * self.total_steps, rate * 0.1, rate)
        if self.warmup_steps:
            rate = rate * keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return rate

    def get_config(self):
        return {"learning_rate": self.learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "kind": self.kind}


def make_optimizer(name="adam", learning_rate=1e-3, clip_norm=None, momentum=0.9, nesterov=False,
                   schedule="constant", total_steps=None, warmup_steps=0, pretrained=(), pretrained_rate=1.0,
                   frozen_steps=0):
    """An optimiser, with gradient clipping by global norm when `clip_norm` is set.

    Clipping rescales the whole gradient g to clip_norm * g / ||g|| when ||g|| exceeds
    clip_norm: the direction is kept, an exploding step is not taken (Pascanu et al., 2013).
    `learning_rate` is the peak rate of `schedule` (see `learning_rate_schedule`).
    `pretrained`: names of layers that start from a pretrained model, which learn at `pretrained_rate` times
    the rate (discriminative fine-tuning) and not at all for the first `frozen_steps` steps (`_LayerRates`).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}. Received: optimizer={name!r}")
    if clip_norm is not None and clip_norm <= 0:
        raise ValueError(f"clip_norm must be positive. Received: clip_norm={clip_norm!r}")
    rate = learning_rate_schedule(learning_rate, schedule, total_steps, warmup_steps)
    layers = {"pretrained": list(pretrained), "pretrained_rate": pretrained_rate, "frozen_steps": frozen_steps}
    if name == "sgd":
        return RecordingSGD(rate, momentum=momentum, nesterov=nesterov, global_clipnorm=clip_norm, **layers)
    return RecordingAdam(rate, global_clipnorm=clip_norm, **layers)


class _LayerRates:
    """Layers that start from a pretrained model learn at `pretrained_rate` times the rate, and are frozen (rate 0)
    for the first `frozen_steps` steps: the new head learns on the pretrained features before they move (ULMFiT's
    discriminative rates and gradual unfreezing, Howard & Ruder, 2018). Frozen by the step size, not by
    `trainable`: the optimiser's moments follow the gradients all along, so nothing jumps at unfreezing, and the
    step counter (saved in checkpoints) carries the schedule across a resumed run."""

    def __init__(self, *args, pretrained=(), pretrained_rate=1.0, frozen_steps=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.pretrained, self.pretrained_rate, self.frozen_steps = list(pretrained), pretrained_rate, frozen_steps

    def build(self, variables):
        super().build(variables)
        # Variables by index: the backends hand `update_step` their own variable objects, not Keras' (and paths).
        self._pretrained_indices = {self._get_variable_index(v) for v in variables
                                    if set(v.path.split("/")) & set(self.pretrained)}

    def update_step(self, gradient, variable, learning_rate):
        if self._get_variable_index(variable) in self._pretrained_indices:
            factor = keras.ops.where(self.iterations >= self.frozen_steps, self.pretrained_rate, 0.0)
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * keras.ops.cast(factor, variable.dtype)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "pretrained": self.pretrained, "pretrained_rate": self.pretrained_rate,
                "frozen_steps": self.frozen_steps}


class _RecordsGradientNorm:
    """Keeps the global norm ||g|| of the latest gradient, before clipping, in `gradient_norm`.

    The norm of the whole gradient is what explodes or vanishes in backpropagation through
    time; `GradientMonitor` reads it after every step.

    Under a `tf.distribute` strategy with several replicas, each replica holds a share of the
    gradient, which Keras clips before the shares are summed: clipping each share is not
    clipping their sum. Here the shares pass unclipped, and the summed gradient is measured
    and clipped, exactly as one device would (JAX's data parallelism sees the whole gradient).
    """

    def build(self, variables):
        super().build(variables)
        # Every replica records the same norm (of the summed gradient): keep the first's.
        self.gradient_norm = self.add_variable((), initializer="zeros", aggregation="only_first_replica",
                                               name="gradient_norm")

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            self.build(trainable_variables)
        if not _shares_of_gradient():
            self._record(grads)
        return super().apply(grads, trainable_variables)

    def _record(self, grads):
        squares = [keras.ops.sum(keras.ops.square(keras.ops.cast(g, "float32"))) for g in grads if g is not None]
        if squares:
            self.gradient_norm.assign(keras.ops.sqrt(keras.ops.sum(keras.ops.stack(squares))))

    def _clip_gradients(self, grads):
        return grads if _shares_of_gradient() else super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):  # TensorFlow only: the shares, summed
        summed = super()._all_reduce_sum_gradients(grads_and_vars)
        if not _shares_of_gradient():
            return summed
        grads, variables = [g for g, _ in summed], [v for _, v in summed]
        self._record(grads)
        return list(zip(super()._clip_gradients(grads), variables))


def _shares_of_gradient():
    """Whether this step runs in one of several replicas of a `tf.distribute` strategy."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context is not None and context.num_replicas_in_sync > 1


@keras.saving.register_keras_serializable(package="toolkit")
class SyncedLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """A `LossScaleOptimizer` whose replicas agree whether a step overflowed.

    Keras 3 decides from the first replica's gradient share alone (its comment assumes the
    shares are summed already; they are summed later): a step that overflowed on another
    replica would be applied, writing inf into the weights, and workers could take different
    branches and stop lining up their collectives. Here a replica's share is made non-finite
    when any replica's is, so every replica skips the step and halves the scale together.
    """

    def apply(self, grads, trainable_variables=None):
        if _shares_of_gradient():
            import tensorflow as tf

            present = [g for g in grads if g is not None]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in present])
            overflowed = tf.distribute.get_replica_context().all_reduce("SUM", 1.0 - tf.cast(finite, tf.float32))
            grads = [g if g is None else tf.where(overflowed > 0, tf.fill(tf.shape(g), tf.constant(float("nan"), g.dtype)), g)
                     for g in grads]
        return super().apply(grads, trainable_variables)


@keras.saving.register_keras_serializable(package="toolkit")
class RecordingAdam(_LayerRates, _RecordsGradientNorm, keras.optimizers.Adam):
    """Adam that records the global gradient norm of each step (and has `_LayerRates`)."""


@keras.saving.register_keras_serializable(package="toolkit")
class RecordingSGD(_LayerRates, _RecordsGradientNorm, keras.optimizers.SGD):
    """SGD that records the global gradient norm of each step (and has `_LayerRates`)."""


class GradientMonitor(keras.callbacks.Callback):
    """The global gradient norm of every training step, and how often clipping fired.

    Adds `gradient_norm` (mean over the epoch's steps), `gradient_norm_max` and, when the
    optimiser clips (`global_clipnorm`), `clipped_fraction` to the epoch's logs, hence to
    history.csv and learning_curves.png; every step's norm goes to `RUN/gradient_norms.csv`.
    """

    FILE = "gradient_norms.csv"

    def __init__(self, run_dir, resumed_epochs=0):
        super().__init__()
        self.path = Path(run_dir) / self.FILE
        self.rows = [r for r in _read_csv(self.path) if int(r["epoch"]) <= resumed_epochs] if resumed_epochs else []
        self.norms = []

    def on_epoch_begin(self, epoch, logs=None):
        self.norms = []

    def on_train_batch_end(self, batch, logs=None):
        variable = getattr(_unwrapped(self.model.optimizer), "gradient_norm", None)
        if variable is not None:
            self.norms.append(float(keras.ops.convert_to_numpy(variable)))

    def on_epoch_end(self, epoch, logs=None):
        if not self.norms or logs is None:
            return
        clip = _unwrapped(self.model.optimizer).global_clipnorm
        logs["gradient_norm"] = sum(self.norms) / len(self.norms)
        logs["gradient_norm_max"] = max(self.norms)
        if clip:
            logs["clipped_fraction"] = sum(n > clip for n in self.norms) / len(self.norms)
        self.rows += [{"epoch": epoch + 1, "step": i + 1, "gradient_norm": round(n, 6), "clipped": int(bool(clip) and n > clip)}
                      for i, n in enumerate(self.norms)]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", "step", "gradient_norm", "clipped"])
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buffer.getvalue())


def _unwrapped(optimizer):
    """The optimiser itself, inside the `LossScaleOptimizer` that mixed_float16 wraps around it."""
    return getattr(optimizer, "inner_optimizer", optimizer)


class RunRecorder(keras.callbacks.Callback):
    """Checkpoints every epoch, keeps the best model, writes the history and stops early.

    Early stopping is decided from the recorded history (`patience` epochs without a new
    best `monitor` value), so it carries over unchanged when a run is resumed.
    """

    def __init__(self, run_dir, history, monitor="val_loss", mode="min", patience=None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.history = list(history)
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        optimizer = self.model.optimizer
        row["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        row["seconds"] = round(time.monotonic() - self._epoch_start, 2)
        self.history.append(row)
        if best_epoch(self.history, self.monitor, self.mode) == row["epoch"]:
            with atomic_path(self.run_dir / BEST_MODEL, suffix=".keras") as tmp:
                self.model.save(tmp)
        stop = should_stop(self.history, self.monitor, self.mode, self.patience)
        save_checkpoint(self.run_dir, self.model, self.history, finished=stop)
        write_history(self.run_dir, self.history)
        if stop:
            print(f"\nEarly stopping: no better {self.monitor} for {self.patience} epochs "
                  f"(best at epoch {best_epoch(self.history, self.monitor, self.mode)}).", file=sys.stderr)
            self.model.stop_training = True


def best_epoch(history, monitor="val_loss", mode="min"):
    """The epoch number with the best `monitor` value, or None when it was never logged."""
    scored = [(row[monitor], row["epoch"]) for row in history if monitor in row and math.isfinite(row[monitor])]
    if not scored:
        return None
    pick = min if mode == "min" else max
    return pick(scored, key=lambda s: s[0])[1]


def should_stop(history, monitor, mode, patience):
    if not patience or not history:
        return False
    best = best_epoch(history, monitor, mode)
    return best is not None and history[-1]["epoch"] - best >= patience


def save_checkpoint(run_dir, model, history, finished=False):
    """Writes the model, then a state file naming it: whichever is last on disk is consistent."""
    folder = Path(run_dir) / "checkpoint"
    folder.mkdir(parents=True, exist_ok=True)
    epoch = history[-1]["epoch"] if history else 0
    name = f"epoch-{epoch:04d}.keras"
    with atomic_path(folder / name, suffix=".keras") as tmp:
        model.save(tmp)
    write_json(folder / "state.json", {"model": name, "epoch": epoch, "finished": finished, "history": history})
    for old in folder.glob("epoch-*.keras"):
        if old.name != name:
            old.unlink()


def load_checkpoint(run_dir):
    """(model, state) of the latest finished epoch, or (None, None) for a new run."""
    state_file = Path(run_dir) / "checkpoint" / "state.json"
    if not state_file.exists():
        return None, None
    try:
        state = read_json(state_file)
        model = keras.saving.load_model(state_file.parent / state["model"])
    except (OSError, ValueError, KeyError) as e:
        raise ToolkitError(f"cannot resume from {state_file.parent}: {e}") from None
    return model, state


def write_history(run_dir, history):
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    write_text(Path(run_dir) / "history.csv", buffer.getvalue())
    plot_learning_curves(history, Path(run_dir) / "learning_curves.png")


def plot_learning_curves(history, path, title=None):
    """One panel per metric, training and validation together, against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    metrics = [k for k in history[0] if not k.startswith("val_") and k not in ("epoch", "seconds", "learning_rate")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, metric in zip(axes[0], metrics):
        ax.plot(epochs, [row.get(metric) for row in history], "o-", label="train")
        if any(f"val_{metric}" in row for row in history):
            ax.plot(epochs, [row.get(f"val_{metric}") for row in history], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def check_same_settings(run_dir, settings, may_change=("epochs", "patience"), defaults=None, renamed=None):
    """Refuses to resume a run folder with different settings: one folder, one experiment.

    Only the stopping rules (`may_change`) can differ, so a finished run can be continued.
    A setting the run's config lacks (an option added since it started) counts as its value
    in `defaults`, the settings that option had before it existed; `renamed` maps a
    setting's old name to its new one.
    """
    config_file = Path(run_dir) / CONFIG_FILE
    if not config_file.exists():
        return
    stored = {(renamed or {}).get(k, k): v for k, v in read_json(config_file).get("train", {}).items()}
    previous = {**(defaults or {}), **stored}
    changed = [k for k in settings if k not in may_change and previous.get(k) != settings[k]]
    if changed:
        raise ToolkitError(f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
                           "use a new --out folder, or the same options to resume it")


def fit(model, train, validation, run_dir, *, epochs, patience=None, monitor="val_loss", mode="min",
        callbacks=(), verbose="auto"):
    """Trains `model` (compiled) for up to `epochs` epochs in `run_dir`, resuming if it was interrupted.

    `train` is a `tf.data.Dataset` that shuffles itself (each epoch) where it should.

    Returns the model of the best validation epoch, loaded from `best.keras`.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resumed, state = load_checkpoint(run_dir)
    history = []
    if resumed is not None:
        model, history = resumed, state["history"]
        if state["finished"] or state["epoch"] >= epochs:
            print(f"Run in {run_dir} already finished after {state['epoch']} epochs.", file=sys.stderr)
        else:
            print(f"Resuming {run_dir} after epoch {state['epoch']}.", file=sys.stderr)
    # Bucketed datasets have no known length: Keras learns it in the first epoch and warns.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    done = (state or {}).get("finished", False) or len(history) >= epochs
    if not done:
        recorder = RunRecorder(run_dir, history, monitor=monitor, mode=mode, patience=patience)
        gradients = GradientMonitor(run_dir, resumed_epochs=len(history))
        model.fit(train, validation_data=validation, epochs=epochs, initial_epoch=len(history),
                  callbacks=[gradients, recorder, *callbacks], shuffle=False, verbose=verbose)
        history = recorder.history
    best = run_dir / BEST_MODEL
    if not best.exists():
        raise ToolkitError(f"no best model in {run_dir}: did the validation loss ever become finite?")
    return keras.saving.load_model(best), history


def compile_sequence_model(model, optimizer, label_smoothing):
    """Compiles a teacher-forced sentence writer (translator, captioner).

    The loss is the label-smoothed categorical negative log-likelihood of each next token, the
    metric the share of next tokens predicted right; padding is weighted 0 by the batches.
    """
    from toolkit.losses import SmoothedCrossEntropy

    model.compile(optimizer=optimizer, loss=SmoothedCrossEntropy(label_smoothing),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def load_best(run_dir):
    """The run's best model for export: in float32 throughout, whatever precision it trained in."""
    from toolkit.distribute import float32_model

    return float32_model(keras.saving.load_model(Path(run_dir) / BEST_MODEL, compile=False))


def read_run(run_dir, kind):
    """The config of a finished-enough run folder of `kind`, with its test `metrics` (or None).

    Refuses folders that are no run, runs of another kind, and runs without a best model yet:
    what every exporter needs to check before loading `best.keras`.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if config.get("kind") != kind:
        raise ToolkitError(f"{run_dir} is a {config.get('kind')} run, not a {kind}")
    if not (run_dir / BEST_MODEL).exists():
        raise ToolkitError(f"{run_dir} has no {BEST_MODEL} yet: train at least one epoch first")
    config["metrics"] = read_json(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).exists() else None
    return config


def read_run_config(run_dir):
    """The `config.json` of a run folder; ToolkitError for a folder that is no training run."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ToolkitError(f"{run_dir} is not a training run folder (no {CONFIG_FILE})")
    try:
        config = read_json(path)
    except (OSError, ValueError) as e:
        raise ToolkitError(f"broken run config {path}: {e}") from None
    if not isinstance(config, dict):
        raise ToolkitError(f"broken run config {path}: not a JSON object")
    return config


def training_seconds(history):
    return round(sum(row.get("seconds", 0.0) for row in history), 1)


def plot_runs(run_dirs, path, metric="accuracy", title=None):
    """One figure comparing runs: training (dashed) and validation (solid) `metric` per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, run_dir in enumerate(run_dirs):
        state = Path(run_dir) / "checkpoint" / "state.json"
        history = read_json(state)["history"] if state.exists() else _read_history_csv(Path(run_dir) / "history.csv")
        if not history or metric not in history[0]:
            raise ToolkitError(f"{run_dir} has no {metric!r} history")
        epochs = [row["epoch"] for row in history]
        color = f"C{i}"
        name = Path(run_dir).name
        ax.plot(epochs, [row[metric] for row in history], "--", color=color, alpha=0.7, label=f"{name} (train)")
        if f"val_{metric}" in history[0]:
            ax.plot(epochs, [row[f"val_{metric}"] for row in history], "-", color=color, label=f"{name} (validation)")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{metric} per epoch")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _read_csv(path):
    if not Path(path).exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _read_history_csv(path):
    if not path.exists():
        raise ToolkitError(f"no history in {path.parent}: not a run folder")
    with open(path) as f:
        return [{k: float(v) if k != "epoch" else int(v) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]
