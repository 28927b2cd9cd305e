"""What every predictor shares: finding an exported model, loading it, checking its kind, batching requests.

This module sits below the tasks (`toolkit.tasks.*`) and imports none of them: each task's
predictor class is built from these pieces, and `toolkit.tasks.load` picks the class by the
model's kind.
"""

import json
import math
import os
from pathlib import Path

from toolkit.errors import ToolkitError

MODELS_DIR_ENV = "TOOLKIT_MODELS_DIR"
SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "saved_models"
# Beside the graph, TF Serving's place for extra files: what kind of model it is and what it was trained on.
METADATA_PATH = Path("assets.extra") / "toolkit.json"


def models_dir():
    """Where the shipped models live: `$TOOLKIT_MODELS_DIR`, else the repository's saved_models/."""
    return Path(os.environ.get(MODELS_DIR_ENV) or SHIPPED_MODELS)


def resolve_model_dir(path):
    """A SavedModel folder itself, or the newest numbered version under a TF Serving model folder."""
    path = Path(path)
    if not path.exists():
        raise ToolkitError(f"no such model: {path}")
    if (path / "saved_model.pb").is_file():
        return path
    if path.is_dir():
        versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
        if versions:
            return max(versions, key=lambda p: int(p.name))
    raise ToolkitError(f"{path} is not a model: no saved_model.pb in it or in a numbered version folder")


def read_metadata(model_dir):
    """The toolkit metadata of an exported model (a JSON object with its kind), or None for a SavedModel we did not write."""
    path = Path(model_dir) / METADATA_PATH
    if not path.exists():
        return None
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ToolkitError(f"broken model metadata {path}: {e}") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("kind"), str):
        raise ToolkitError(f"broken model metadata {path}: not a JSON object with a \"kind\"")
    return metadata


def model_kind(path):
    """(kind, version folder) of an exported model, read from its metadata without loading the graph."""
    model_dir = resolve_model_dir(path)
    metadata = read_metadata(model_dir)
    if metadata is None:
        raise ToolkitError(f"{model_dir} is a SavedModel, but not one exported by toolkit (no {METADATA_PATH})")
    return metadata.get("kind"), model_dir


def load_saved_model(path, kind, op_libraries=()):
    """(its signatures, metadata, folder), refusing models that are not of `kind`.

    `op_libraries`: modules to import before loading, which register the custom ops the
    graph uses (TF Text's SentencePiece ops, for instance).
    """
    found, model_dir = model_kind(path)
    if found != kind:
        raise ToolkitError(f"{model_dir} holds a {found!r} model; this command needs a {kind!r} model")
    metadata = read_metadata(model_dir)
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    for module in op_libraries:
        __import__(module)
    try:
        signatures = dict(tf.saved_model.load(str(model_dir)).signatures)
        signatures["serving_default"]  # noqa: B018  (every toolkit model has one)
    except Exception as e:  # a corrupt graph surfaces as any of several TF errors
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ToolkitError(f"cannot load the model in {model_dir}: {message}") from None
    return signatures, metadata, model_dir


class Predictor:
    """An exported model of one kind: its signatures, metadata and folder.

    Subclasses (one per task) set `kind`; `signature_names`, the signatures they call;
    `metadata_fields`, what they read from the metadata and its check (e.g. `strings`);
    `op_libraries`, modules that register the custom ops their graph uses. Metadata and
    graph are checked against these before use, so a damaged model is one clear line.
    """

    kind = None
    op_libraries = ()
    signature_names = ("serving_default",)
    metadata_fields = {}

    def __init__(self, path):
        self.signatures, self.metadata, self.model_dir = load_saved_model(path, self.kind, self.op_libraries)
        for name, check in self.metadata_fields.items():
            if name not in self.metadata or not check(self.metadata[name]):
                raise ToolkitError(f"broken model metadata in {self.model_dir}: {name!r} is missing or not "
                                   f"{check.__doc__} (a {self.kind} model needs it)")
        missing = [name for name in self.signature_names if name not in self.signatures]
        if missing:
            raise ToolkitError(f"{self.model_dir} has no {missing[0]!r} signature, which a {self.kind} model has: "
                               "its graph and its metadata do not belong together")


# Checks of metadata values; each docstring says what it accepts, for the error line.

def strings(value):
    """a list of strings"""
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) for v in value)


def positive_integer(value):
    """a positive integer"""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def number(value):
    """a finite number"""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def image_shape(value):
    """[height, width, channels] with 1 or 3 channels"""
    return (isinstance(value, list) and len(value) == 3 and all(positive_integer(v) for v in value)
            and value[2] in (1, 3))


def in_length_order(items, batch_size):
    """Chunks of indices into `items`, shortest first: inputs of similar length are batched together.

    Recurrent models pay for the longest input of a batch; answering in chunks of similar
    length makes that cheap. Callers put each answer back at its index.
    """
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def plain(value):
    """A numpy scalar from a signature's output as plain Python: str for bytes, a rounded float otherwise."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return round(float(value), 6)


def search_settings(metadata, beam_size=None, length_penalty=None):
    """(beam size, length penalty) as the tensors a decoder's signature takes; the model's own by default."""
    import tensorflow as tf

    beam_size = metadata["beam_size"] if beam_size is None else beam_size
    length_penalty = metadata["length_penalty"] if length_penalty is None else length_penalty
    if beam_size < 1:
        raise ToolkitError(f"beam size must be at least 1. Received: {beam_size}")
    return tf.constant(beam_size, tf.int32), tf.constant(length_penalty, tf.float32)
