"""The settings every training run shares, and the checks that run before anything is written.

Each task's `TrainConfig` is a frozen dataclass that extends `RunConfig`; its defaults are the
only ones: the command line reads them from the dataclass. A config is checked as a whole by
`validate()` before a run folder is touched, so a bad option costs nothing to correct.

This module imports neither TensorFlow nor Keras: the command line reads the defaults
for `--help`.
"""

import dataclasses

# The choices of settings that several layers, models and commands share, defined once.
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "step")
CELLS = ("simple_rnn", "lstm", "gru")
# Initialisations of the recurrent matrix W_hh, the factor that backpropagation through time
# multiplies once per step (see `toolkit.layers.recurrent`).
RECURRENT_INITS = ("orthogonal", "glorot_uniform", "uniform", "identity")
# Activations for the SimpleRNN's state update. A binary step is not offered: its derivative
# is zero almost everywhere, so no gradient flows back through time at all.
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", "elu", "gelu", "leaky_relu")
# Where a run trains (see `toolkit.distribute`), and the precision its layers compute in.
STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker")
# The most words a model with hashed bigrams may have: a pair of word ids is one int32, a * words + b.
MAX_BIGRAM_VOCABULARY = 46340  # the largest n with n * n < 2 ** 31
BIGRAM_HASHES = ("spectral", "vocabulary")  # toolkit.layers.ngrams.HashedBigrams: how a (previous, token) pair is hashed
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# The widest beam and the largest length penalty a search takes: from the command line, from Python, and
# (cut to these, since a serving graph cannot refuse one row) from a REST request, so no request can make
# a search allocate without bound or score a hypothesis -inf.
MAX_BEAM = 64
MAX_LENGTH_PENALTY = 10.0


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What every training run has: the stopping rules, the batch, the optimiser, the seed.

    Tasks redeclare a field to change its default (a ResNet trains for longer, at a higher rate).
    """

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"  # or "cosine" (decay to zero over the epochs), "step" (x0.1 at 50% and 75%)
    clip_norm: float = None  # gradient clipping by global norm; None = off
    patience: int = None  # stop after this many epochs without a better validation score; None = never
    seed: int = 1337
    strategy: str = "auto"  # see toolkit.distribute: auto | one-device | mirrored | multi-worker
    precision: str = "float32"  # or mixed_float16 / mixed_bfloat16: float32 variables, 16-bit compute

    # Settings a run may change when it is resumed: the stopping rules, and where it trains
    # (a run started on one GPU may go on over several); any other change is a new experiment.
    RESUMABLE = ("epochs", "patience", "strategy")
    # Settings renamed since runs were first written: old name -> new name (old runs still resume).
    RENAMED = {}
    # What a setting was in runs written before it was stored (the option did not exist, or had another
    # default then): a stored config that lacks it is read with this value, not today's default.
    ABSENT = {}

    def unused_settings(self):
        """Settings these ones make moot (a hash with nothing to hash): a run may resume with them changed."""
        return ()

    @classmethod
    def absent(cls):
        """The settings a stored config lacks are read as: `ABSENT`, else today's defaults."""
        return {**cls().settings(), **cls.ABSENT}

    def settings(self):
        """The settings as a plain dict: what `config.json` stores under "train"."""
        return dataclasses.asdict(self)

    def validate(self):
        """Raises ValueError naming the first bad setting; every task extends it with its own."""
        positive(self, "epochs", "batch_size", "learning_rate")
        choice(self, "optimizer", OPTIMIZERS)
        choice(self, "schedule", SCHEDULES)
        choice(self, "strategy", STRATEGIES)
        choice(self, "precision", PRECISIONS)
        positive(self, "clip_norm", optional=True)
        if self.patience is not None:
            at_least(self, "patience", 0)  # 0: never stop early
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer. Received: seed={self.seed!r}")

    @classmethod
    def from_settings(cls, settings):
        """A config from a stored "train" dict, mapping renamed settings and ignoring unknown ones."""
        settings = {**cls.ABSENT, **{cls.RENAMED.get(k, k): v for k, v in settings.items()}}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})


def positive(config, *names, optional=False):
    for name in names:
        value = getattr(config, name)
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}")


def at_least(config, name, low):
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:  # NaN fails too
        raise ValueError(f"{name} must be at least {low}. Received: {name}={value!r}")


def fraction(config, *names, open_zero=False):
    """Each setting lies in [0, 1) (`open_zero`: in (0, 1))."""
    for name in names:
        value = getattr(config, name)
        low_ok = value > 0 if open_zero else value >= 0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and value < 1):
            interval = "(0, 1)" if open_zero else "[0, 1)"
            raise ValueError(f"{name} must lie in {interval}. Received: {name}={value!r}")


def cache_location(config, name="cache"):
    """A `--cache` setting: None (each task's default), "memory", "none", or a folder for cache files
    ("./none" names a folder called none)."""
    from pathlib import Path

    value = getattr(config, name)
    if value is None or value == "memory":
        return
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError(f"{name} must be 'memory', 'none' or a folder. Received: {name}={value!r}")
    if value != "none" and Path(value).exists() and not Path(value).is_dir():
        raise ValueError(f"{name} must be 'memory', 'none' or a folder; {value} is a file. Received: {name}={value!r}")


def choice(config, name, choices):
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}. Received: {name}={value!r}")
