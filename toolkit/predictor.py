"""Loading exported models and answering requests with them, as the command line does."""

import os
from pathlib import Path

from toolkit.errors import ToolkitError

MODELS_DIR_ENV = "TOOLKIT_MODELS_DIR"
SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "saved_models"


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


def load_saved_model(path, kind):
    """(loaded SavedModel, metadata, folder), refusing models that are not of `kind`."""
    from toolkit.export import read_metadata

    model_dir = resolve_model_dir(path)
    metadata = read_metadata(model_dir)
    if metadata is None:
        raise ToolkitError(f"{model_dir} is a SavedModel, but not one exported by toolkit (no assets.extra/toolkit.json)")
    if metadata.get("kind") != kind:
        raise ToolkitError(f"{model_dir} is a {metadata.get('kind')} model, not a {kind} model")
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(model_dir))
        serve = loaded.signatures["serving_default"]
    except Exception as e:  # a corrupt graph surfaces as any of several TF errors
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ToolkitError(f"cannot load the model in {model_dir}: {message}") from None
    return serve, metadata, model_dir


class TextClassifier:
    """An exported text classifier: strings in, `{"label", "probability"}` out."""

    def __init__(self, path):
        from toolkit.sentiment import KIND

        self.serve, self.metadata, self.model_dir = load_saved_model(path, KIND)
        self.class_names = self.metadata["class_names"]

    def predict(self, texts, batch_size=64):
        """Answers in the order given; texts of similar length are batched together for speed."""
        import tensorflow as tf

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            outputs = self.serve(text=tf.constant([texts[i] for i in chunk], dtype=tf.string))
            outputs = {k: v.numpy() for k, v in outputs.items()}
            for row, i in enumerate(chunk):
                results[i] = {k: _plain(v[row]) for k, v in outputs.items()}
        return results


def _plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return round(float(value), 6)
