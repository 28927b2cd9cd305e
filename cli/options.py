"""Options shared by several commands, defined once; training options take their defaults from the task's config."""

import dataclasses
import math

import click

from toolkit.config import (
    MAX_BEAM,
    MAX_LENGTH_PENALTY,
    OPTIMIZERS,
    PRECISIONS,
    RECURRENT_INITS,
    SCHEDULES,
    STRATEGIES,
)
from toolkit.data import tfds_data
from toolkit.lite import RUNTIMES

data_dir = click.option(
    "--data-dir", type=click.Path(), default=None,
    help="Local copy of the data set (folder or archive). Default: $TOOLKIT_DATA_DIR/<dataset>, else download.")
json_output = click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one JSON object per input.")


runtime = click.option(
    "--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True,
    help="What answers: litert (the model's LiteRT form: no TensorFlow import, answers in a fraction of a second), "
         "tensorflow (its SavedModel), or auto: LiteRT where the model has that form, else TensorFlow.")


def model_option(default_name):
    return click.option(
        "--model", "model_path", type=click.Path(), default=None,
        help=f"A model's name (see `toolkit models`), a TF Serving model folder (its newest version) or a "
             f"version folder. Default: {default_name}, the shipped model.")


def beam_size(what, shipped):
    return click.option("--beam-size", type=click.IntRange(min=1, max=MAX_BEAM), default=None,
                        help=f"{what} kept while searching; 1 is greedy. Default: the model's ({shipped} for the shipped one).")


class FiniteFloat(click.FloatRange):
    """A float in a range; NaN and infinities are refused (a plain FloatRange lets NaN through)."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number", param, ctx)
        return value


length_penalty = click.option("--length-penalty", type=FiniteFloat(min=0.0, max=MAX_LENGTH_PENALTY), default=None,
                              help=f"Hypotheses compete by log p / length**this (0 to {MAX_LENGTH_PENALTY:g}). "
                                   "Default: the model's.")

RECURRENT_INIT_HELP = ("How the recurrent matrix starts: orthogonal (Keras' default), uniform = U(-0.08, 0.08) "
                       "(early seq2seq work: a fresh SimpleRNN's gradient vanishes), identity (IRNN, for relu).")
recurrent_init = click.option("--recurrent-init", type=click.Choice(RECURRENT_INITS), default="orthogonal",
                              show_default=True, help=RECURRENT_INIT_HELP)


# === Training options, from the task's TrainConfig ===

def setting(config_class, name, *flags, **kwargs):
    """A click option for the `name` field of `config_class`, with the field's default.

    `flags` default to `--name-with-dashes` (`--name/--no-name` for booleans); the type is
    the field's unless `type` (e.g. a `click.Choice`) is given.
    """
    field = {f.name: f for f in dataclasses.fields(config_class)}.get(name)
    if field is None:
        raise ValueError(f"{config_class.__qualname__} has no setting {name!r}")
    option = "--" + name.replace("_", "-")
    if field.type is bool and not kwargs.get("is_flag"):
        flags = flags or (f"{option}/--no-{option[2:]}",)
    else:
        flags = flags or (option,)
        if "type" not in kwargs and not kwargs.get("is_flag") and field.type in (int, float, str):
            kwargs["type"] = field.type
    kwargs.setdefault("default", field.default)
    kwargs.setdefault("show_default", kwargs["default"] is not None and not kwargs.get("is_flag"))
    return click.option(*flags, name, **kwargs)


def _zero_is_off(ctx, param, value):
    """`--clip-norm 0`: no clipping (the config's None), where the default clips."""
    return None if value == 0 else value


def run_options(config_class):
    """The options every `toolkit train` command has: where the run goes, and `toolkit.config.RunConfig`'s settings."""
    decorators = [
        click.option("--out", "run_dir", type=click.Path(file_okay=False), required=True,
                     help="Run folder: checkpoints, history, curves, metrics. Re-run the same command to resume."),
        setting(config_class, "epochs", type=click.IntRange(min=1), help="Epochs to train at most."),
        setting(config_class, "batch_size", type=click.IntRange(min=1), help="Examples per training step."),
        setting(config_class, "optimizer", type=click.Choice(OPTIMIZERS)),
        setting(config_class, "learning_rate", help="Peak learning rate."),
        setting(config_class, "schedule", type=click.Choice(SCHEDULES),
                help="Learning rate: constant, cosine decay to zero over --epochs, or step (x0.1 at 50% and 75%)."),
        setting(config_class, "clip_norm", callback=_zero_is_off,
                help="Clip gradients to this global norm: backpropagation through time can explode. Default: off."
                if _default(config_class, "clip_norm") is None else
                "Clip gradients to this global norm: backpropagation through time can explode. 0: off."),
        setting(config_class, "patience", type=int,
                help="Stop after this many epochs without a better validation score"
                     + (" (default: train every epoch)." if _default(config_class, "patience") is None else ".")),
        setting(config_class, "seed", help="Seeds data splits, shuffling and initialisation."),
        setting(config_class, "strategy", type=click.Choice(STRATEGIES),
                help="Where to train: auto (one device, all local GPUs when there are several, or the cluster "
                     "TF_CONFIG names), one-device, mirrored (local GPUs), multi-worker (TF_CONFIG). "
                     "--batch-size is the global batch. See README, Scaling out."),
        setting(config_class, "precision", type=click.Choice(PRECISIONS),
                help="Compute in 16 bits with float32 weights (mixed_float16 with loss scaling, for GPUs; "
                     "mixed_bfloat16 for TPUs and recent CPUs/GPUs). Exports stay float32."),
    ]

    def apply(command):
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def _default(config_class, name):
    return {f.name: f.default for f in dataclasses.fields(config_class)}[name]


# === Data sets ===

def datasets(*names):
    """A `--dataset` callback: one of `names`, or tfds:NAME (a tensorflow-datasets set; the name is looked up
    when the data are read)."""
    def check(ctx, param, value):
        if value is None or value in names or tfds_data.is_tfds(value):
            return value
        raise click.BadParameter(f"expected {', '.join(names + ('tfds:NAME',))}. Received: {value!r}")

    return check


TFDS_HELP = ("tfds:NAME reads a TensorFlow Datasets set with class labels from --data-dir, else $TFDS_DATA_DIR, "
             "else ~/tensorflow_datasets, downloading it there if absent (offline: `tfds build NAME` elsewhere).")
