"""A classifier's pretrained start: the embedding and recurrent layers of a language model.

A language model (`toolkit train language-model`) learns from unlabelled text what words mean
and how they follow one another; a text classifier started from its `embedding` and `rnn_*`
layers (`toolkit train sentiment --init-from LM`) then learns only what decides the label
(Dai & Le, 2015; ULMFiT, Howard & Ruder, 2018). The start is read from a language-model run
folder (its best epoch) or from an exported language model (a name such as `review_lm`, or its
folder), which keeps it in `assets.extra/language_model/`:

    settings.json        the architecture (cell, units, embedding_dim, num_layers)
    vocabulary.txt       the vocabulary, shared by the classifier (its token ids are the model's)
    encoder.npz          the transferred layers' weights, plain arrays (read without pickle: no code runs)

This module sits below the tasks: both the language-model task (which writes a start) and the
text-classification task (which reads one) use it.
"""

import dataclasses
from pathlib import Path

from toolkit.atomic import atomic_path, read_json, write_json, write_text
from toolkit.errors import ToolkitError

KIND = "language_model"
START_DIR = Path("assets.extra") / "language_model"
SETTINGS_FILE, VOCABULARY_FILE, WEIGHTS_FILE = "settings.json", "vocabulary.txt", "encoder.npz"
# What a classifier takes from the language model's settings: its layers' shapes.
ARCHITECTURE = ("cell", "units", "embedding_dim", "num_layers")
# The layers copied: those that read the words, not the softmax that predicts them.
TRANSFERRED = ("embedding", "rnn_")


@dataclasses.dataclass(frozen=True)
class Start:
    """A language model's transferable part: `settings` (ARCHITECTURE), the `vocabulary` (padding and unknown
    first, as `TextPreprocessor.vocabulary`), `weights` ({layer name: [arrays]}) and where it came from."""

    settings: dict
    vocabulary: list
    weights: dict
    source: str


def read_start(source):
    """The `Start` in `source`: a language-model run folder, or an exported language model (name or folder)."""
    from toolkit.serving import find_model, model_kind
    from toolkit.training import CONFIG_FILE

    path = Path(source)
    if (path / CONFIG_FILE).is_file():
        return _start_of_run(path)
    kind, model_dir = model_kind(find_model(source))
    if kind != KIND:
        raise ToolkitError(f"--init-from {source}: {model_dir} is a {kind} model, not a language model")
    return _start_of_export(model_dir)


def _start_of_run(run_dir):
    import toolkit.models.language_model  # noqa: F401  (registers the custom layers for loading)
    from toolkit.preprocessing.text import TextPreprocessor
    from toolkit.training import load_best, read_run

    config = read_run(run_dir, KIND)
    model = load_best(run_dir)
    return Start({k: config["train"][k] for k in ARCHITECTURE}, TextPreprocessor.load(run_dir).vocabulary,
                 transferable_weights(model), str(run_dir))


def _start_of_export(model_dir):
    import numpy as np

    folder = Path(model_dir) / START_DIR
    try:
        settings = read_json(folder / SETTINGS_FILE)
        vocabulary = (folder / VOCABULARY_FILE).read_text(encoding="utf-8").split("\n")[:-1]
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as arrays:
            weights = {}
            for key in sorted(arrays.files, key=lambda k: (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]))):
                layer, _ = key.rsplit(":", 1)
                weights.setdefault(layer, []).append(arrays[key])
        if not isinstance(settings, dict) or any(k not in settings for k in ARCHITECTURE):
            raise ValueError(f"{SETTINGS_FILE} lacks one of {', '.join(ARCHITECTURE)}")
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise ToolkitError(f"cannot read the language model's start in {folder}: {e}") from None
    return Start({k: settings[k] for k in ARCHITECTURE}, vocabulary, weights, str(model_dir))


def transferable_weights(model):
    """{layer name: [arrays]} of the model's embedding and recurrent layers."""
    return {layer.name: layer.get_weights() for layer in model.layers
            if layer.name.startswith(TRANSFERRED) and layer.weights}


def write_start(folder, settings, vocabulary, weights):
    """Writes a `Start`'s files into `folder` (a version's `assets.extra/language_model`, being exported)."""
    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / SETTINGS_FILE, {k: settings[k] for k in ARCHITECTURE})
    write_text(folder / VOCABULARY_FILE, "\n".join(vocabulary) + "\n")
    arrays = {f"{layer}:{i}": w for layer, ws in weights.items() for i, w in enumerate(ws)}
    with atomic_path(folder / WEIGHTS_FILE, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


FLAGS = {"num_layers": "layers"}  # settings whose `toolkit train sentiment` option is spelled otherwise


def configure(config, start, defaults):
    """`config` (a text classifier's TrainConfig) with the start's architecture and vocabulary size.

    A setting the user changed from its default (`defaults`) to something else than the language
    model's is refused, naming both: the layers must have the shapes of the ones they start from.
    The classifier reads forwards, and adds no bigram vectors unless asked (`bigram_buckets`).
    """
    changes = {}
    for name in ARCHITECTURE:
        ours, theirs = getattr(config, name), start.settings[name]
        if ours != getattr(defaults, name) and ours != theirs:
            flag = "--" + FLAGS.get(name, name).replace("_", "-")
            raise ValueError(f"{name}={ours!r} differs from the language model's {theirs!r}: a classifier started "
                             f"from it (--init-from) takes its layers' shapes; leave {flag} out")
        changes[name] = theirs
    changes["bidirectional"] = False  # it reads forwards, as the language model did
    if config.bigram_buckets == defaults.bigram_buckets:
        changes["bigram_buckets"] = 0  # the language model's layers never saw bigram vectors added to its words
    changes["vocabulary_size"] = len(start.vocabulary)
    return dataclasses.replace(config, **changes)


def transfer(start, classifier):
    """Copies the start's weights into the classifier's layers of the same names; the names copied."""
    copied = []
    for layer in classifier.layers:
        if layer.name not in start.weights:
            continue
        weights = start.weights[layer.name]
        shapes, expected = [tuple(w.shape) for w in weights], [tuple(w.shape) for w in layer.weights]
        if shapes != expected:
            raise ToolkitError(f"layer {layer.name!r} of the language model in {start.source} has weights of shapes "
                               f"{shapes}, the classifier's {expected}")
        layer.set_weights(weights)
        copied.append(layer.name)
    if "embedding" not in copied:
        raise ToolkitError(f"the language model in {start.source} has no embedding layer to start from")
    return copied
