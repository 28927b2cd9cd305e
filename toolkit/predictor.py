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


def load_saved_model(path, kind, op_libraries=()):
    """(its signatures, metadata, folder), refusing models that are not of `kind`.

    `op_libraries`: modules to import before loading, which register the custom ops the
    graph uses (TF Text's SentencePiece ops, for instance).
    """
    from toolkit.export import read_metadata

    model_dir = resolve_model_dir(path)
    metadata = read_metadata(model_dir)
    if metadata is None:
        raise ToolkitError(f"{model_dir} is a SavedModel, but not one exported by toolkit (no assets.extra/toolkit.json)")
    if metadata.get("kind") != kind:
        raise ToolkitError(f"{model_dir} holds a {metadata.get('kind')!r} model; this command needs a {kind!r} model")
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


class TextClassifier:
    """An exported text classifier: strings in, `{"label", "probability"}` out."""

    def __init__(self, path):
        from toolkit.sentiment import KIND

        signatures, self.metadata, self.model_dir = load_saved_model(path, KIND)
        self.serve = signatures["serving_default"]
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


class ImageClassifier:
    """An exported image classifier: encoded image bytes in, labels and top-k out."""

    def __init__(self, path):
        from toolkit.images import KIND

        signatures, self.metadata, self.model_dir = load_saved_model(path, KIND)
        self.serve_pixels = signatures["predict_pixels"]
        self.class_names = self.metadata["class_names"]
        self.image_shape = tuple(self.metadata["image_shape"])

    def decode(self, data, name="image"):
        return decode_pixels(data, self.image_shape, name)

    def predict_pixels(self, pixels, batch_size=256):
        import numpy as np
        import tensorflow as tf

        results = []
        for start in range(0, len(pixels), batch_size):
            out = self.serve_pixels(pixels=tf.constant(np.asarray(pixels[start:start + batch_size], "float32")))
            out = {k: v.numpy() for k, v in out.items()}
            for row in range(len(out["label"])):
                results.append({
                    "label": out["label"][row].decode(), "probability": round(float(out["probability"][row]), 6),
                    "top_k": [{"label": label.decode(), "probability": round(float(p), 6)}
                              for label, p in zip(out["top_k_labels"][row], out["top_k_probabilities"][row])]})
        return results


def _short(reason):
    return reason if len(reason) < 120 else reason[:117] + "..."


MAX_IMAGE_PIXELS = 50_000_000


def decode_pixels(data, image_shape, name="image"):
    """Pixels of one encoded image, as the serving graph decodes them; ToolkitError if it is not one."""
    from toolkit.preprocessing.image import decode_image
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    check_image_header(data, name)
    try:
        return decode_image(tf.constant(data), tuple(image_shape[:2]), image_shape[2]).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else "cannot decode"
        raise ToolkitError(f"{name}: not a readable image ({_short(reason)})") from None


def check_image_header(data, name):
    """Refuses what is not an image, and images too large to decode in bounded memory, before decoding."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            kind = image.format
    except Exception:  # Pillow raises many types for non-images  # noqa: BLE001
        raise ToolkitError(f"{name}: not an image (JPEG, PNG, GIF or BMP expected)") from None
    if kind not in ("JPEG", "PNG", "GIF", "BMP", "MPO"):
        raise ToolkitError(f"{name}: {kind} images are not supported (JPEG, PNG, GIF or BMP expected)")
    if width * height > MAX_IMAGE_PIXELS:
        raise ToolkitError(f"{name}: {width}x{height} is too large to decode (limit {MAX_IMAGE_PIXELS:,} pixels)")


def search_settings(metadata, beam_size=None, length_penalty=None):
    """(beam size, length penalty) as the tensors a decoder's signature takes; the model's own by default."""
    import tensorflow as tf

    beam_size = metadata["beam_size"] if beam_size is None else beam_size
    length_penalty = metadata["length_penalty"] if length_penalty is None else length_penalty
    if beam_size < 1:
        raise ToolkitError(f"beam size must be at least 1. Received: {beam_size}")
    return tf.constant(beam_size, tf.int32), tf.constant(length_penalty, tf.float32)


class Translator:
    """An exported translator: source sentences in, `{"translation", "score"}` out."""

    def __init__(self, path):
        from toolkit.translation import KIND

        signatures, self.metadata, self.model_dir = load_saved_model(path, KIND, op_libraries=("tensorflow_text",))
        self.serve = signatures["translate"]

    def translate(self, sentences, beam_size=None, length_penalty=None, batch_size=64):
        """Translations in the order given; sentences of similar length are batched together."""
        from toolkit.translation import translate_all

        beam, penalty = search_settings(self.metadata, beam_size, length_penalty)
        return translate_all(lambda text: self.serve(text=text, beam_size=beam, length_penalty=penalty),
                             list(sentences), batch_size)


class Captioner:
    """An exported captioner: images in, `{"caption", "score"}` out."""

    def __init__(self, path):
        from toolkit.captioning import KIND

        signatures, self.metadata, self.model_dir = load_saved_model(path, KIND)
        self.serve_pixels = signatures["caption_pixels"]
        self.image_shape = tuple(self.metadata["image_shape"])

    def decode(self, data, name="image"):
        return decode_pixels(data, self.image_shape, name)

    def caption_pixels(self, pixels, beam_size=None, length_penalty=None, batch_size=32):
        """Captions of decoded images (`decode`), in the order given."""
        from toolkit.captioning import caption_rows

        beam, penalty = search_settings(self.metadata, beam_size, length_penalty)
        return caption_rows(lambda p: self.serve_pixels(pixels=p, beam_size=beam, length_penalty=penalty),
                            pixels, batch_size)
