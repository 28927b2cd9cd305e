"""End-to-end serving models, written as SavedModels in TF Serving's layout: `TO/NAME/VERSION/`.

Each export takes raw inputs (text strings, encoded image bytes) in its `serving_default`
signature and answers with a dict of self-explaining outputs. Beside the graph, the version
folder holds `assets.extra/toolkit.json` (TF Serving's place for extra files): what kind of
model it is and what it was trained on, so the command line can refuse a model of the wrong kind.
"""

import datetime
import json
from pathlib import Path

import toolkit
from toolkit.errors import ToolkitError
from toolkit.io import atomic_path, write_json

METADATA_PATH = Path("assets.extra") / "toolkit.json"

# TensorFlow and Keras are imported inside the functions that build graphs, so that reading
# a model's metadata (to refuse a wrong --model quickly) costs no TensorFlow import.


def version_dir(to, name, version):
    """`TO/NAME/VERSION`, refusing anything TF Serving would not load as a version."""
    if not isinstance(version, int) or version < 1:
        raise ToolkitError(f"version must be a positive integer. Received: {version!r}")
    if not name or "/" in name or name.startswith("."):
        raise ToolkitError(f"name must be a plain folder name. Received: {name!r}")
    return Path(to) / name / str(version)


def next_version(to, name):
    folder = Path(to) / name
    versions = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return max(versions, default=0) + 1


def write_saved_model(archive, to, name, version, metadata):
    """Writes `archive` to `TO/NAME/VERSION` through a temporary folder renamed into place.

    An existing version is never overwritten: TF Serving may be serving it right now.
    """
    target = version_dir(to, name, version)
    if target.exists():
        raise ToolkitError(f"{target} already exists and is never overwritten; "
                           f"export as --version {next_version(to, name)}")
    metadata = {**metadata, "name": name, "version": version, "toolkit_version": toolkit.__version__,
                "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with atomic_path(target) as tmp:
        archive.write_out(str(tmp), verbose=False)
        write_json(tmp / METADATA_PATH, metadata)
    return target


def read_metadata(model_dir):
    """The toolkit metadata of an exported model, or None for a SavedModel we did not write."""
    path = Path(model_dir) / METADATA_PATH
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ToolkitError(f"broken model metadata {path}: {e}") from None


def text_classifier_archive(members, class_names, task):
    """`serving_default`: a batch of raw strings -> `{"label", "probability"}` (or `{"value"}` for regression).

    `members` is a list of (model, preprocessor) pairs; with several, their outputs (probabilities,
    or values) are averaged: an ensemble of independently trained models. `probability` is the
    model's probability of the returned label.
    """
    import keras
    import tensorflow as tf

    # Variables are tracked through the endpoints that use them; tracking the models as well
    # would store every weight twice. The vectorizers' lookup tables are tracked explicitly.
    archive = keras.export.ExportArchive()
    for _, preprocessor in members:
        archive.track(preprocessor.vectorizer)
    names = tf.constant(list(class_names), dtype=tf.string)

    def serve(text):
        outputs = tf.add_n([model(preprocessor(text), training=False) for model, preprocessor in members])
        outputs = outputs / len(members)
        if task == "regression":
            return {"value": outputs[:, 0]}
        if task == "binary":
            p = outputs[:, 0]
            positive = p >= 0.5
            return {"label": tf.gather(names, tf.cast(positive, tf.int32)),
                    "probability": tf.where(positive, p, 1.0 - p)}
        return {"label": tf.gather(names, tf.argmax(outputs, axis=-1)),
                "probability": tf.reduce_max(outputs, axis=-1)}

    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")])
    return archive


def image_classifier_archive(model, class_names, top_k=5, flip_average=False):
    """Two signatures, both answering `{"label", "probability", "top_k_labels", "top_k_probabilities"}`:

    - `serving_default`: a batch of encoded images (`image_bytes`: JPEG, PNG, GIF or BMP; what
      TF Serving's REST API delivers from `{"b64": ...}`), decoded and resized in the graph;
    - `predict_pixels`: float pixels in [0, 255], `[batch, height, width, channels]`.

    With `flip_average`, the probabilities are averaged with those of the mirrored image.
    """
    import keras
    import tensorflow as tf

    from toolkit.preprocessing.image import decode_image

    height, width, channels = model.input_shape[1:]
    k = min(top_k, len(class_names))
    names = tf.constant(list(class_names), dtype=tf.string)
    archive = keras.export.ExportArchive()  # variables are tracked through the endpoints

    def classify(pixels):
        probabilities = model(pixels, training=False)
        if flip_average:
            probabilities = (probabilities + model(tf.image.flip_left_right(pixels), training=False)) / 2.0
        top = tf.math.top_k(probabilities, k=k)
        return {"label": tf.gather(names, top.indices[:, 0]), "probability": top.values[:, 0],
                "top_k_labels": tf.gather(names, top.indices), "top_k_probabilities": top.values}

    def serve_bytes(image_bytes):
        pixels = tf.map_fn(lambda b: decode_image(b, (height, width), channels), image_bytes,
                           fn_output_signature=tf.TensorSpec((height, width, channels), tf.float32))
        return classify(pixels)

    archive.add_endpoint("serving_default", serve_bytes,
                         input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="image_bytes")])
    archive.add_endpoint("predict_pixels", classify,
                         input_signature=[tf.TensorSpec(shape=(None, height, width, channels), dtype=tf.float32,
                                                        name="pixels")])
    return archive


def translator_archive(graph, beam_size, length_penalty):
    """Two signatures, both answering `{"translation": string, "score": float}` per sentence:

    - `serving_default`: a batch of source sentences (`text`), searched with the run's
      beam size and length penalty;
    - `translate`: the same, with `beam_size` (1 = greedy) and `length_penalty` as inputs.

    `graph` is a `translation.TranslationGraph`: tokeniser, encoder, beam search and
    detokeniser in one TensorFlow function, so clients send and receive plain text.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()  # variables are tracked through the endpoints
    for resource in graph.trackables():
        archive.track(resource)

    def serve(text):
        return graph.translate(text, tf.constant(beam_size, tf.int32), tf.constant(length_penalty, tf.float32))

    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")])
    archive.add_endpoint("translate", graph.translate,
                         input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="text"),
                                          tf.TensorSpec(shape=(), dtype=tf.int32, name="beam_size"),
                                          tf.TensorSpec(shape=(), dtype=tf.float32, name="length_penalty")])
    return archive


def captioner_archive(graph, size, beam_size, length_penalty):
    """Three signatures, all answering `{"caption": string, "score": float}` per image:

    - `serving_default`: a batch of encoded images (`image_bytes`), decoded and resized in the
      graph, searched with the run's beam size and length penalty;
    - `caption`: the same, with `beam_size` (1 = greedy) and `length_penalty` as inputs;
    - `caption_pixels`: float pixels in [0, 255], `[batch, height, width, 3]`, with both.

    `graph` is a `captioning.CaptionGraph`: encoder, decoder, beam search and words in one
    TensorFlow function. `score` is the caption's log-probability / length**length_penalty.
    """
    import keras
    import tensorflow as tf

    from toolkit.preprocessing.image import decode_image

    archive = keras.export.ExportArchive()  # variables are tracked through the endpoints
    for resource in graph.trackables():
        archive.track(resource)

    def decode(image_bytes):
        return tf.map_fn(lambda b: decode_image(b, size, 3), image_bytes,
                         fn_output_signature=tf.TensorSpec((*size, 3), tf.float32))

    def caption(image_bytes, beam_size, length_penalty):
        return graph.caption_pixels(decode(image_bytes), beam_size, length_penalty)

    def serve(image_bytes):
        return caption(image_bytes, tf.constant(beam_size, tf.int32), tf.constant(length_penalty, tf.float32))

    image_bytes = tf.TensorSpec(shape=(None,), dtype=tf.string, name="image_bytes")
    search = [tf.TensorSpec(shape=(), dtype=tf.int32, name="beam_size"),
              tf.TensorSpec(shape=(), dtype=tf.float32, name="length_penalty")]
    archive.add_endpoint("serving_default", serve, input_signature=[image_bytes])
    archive.add_endpoint("caption", caption, input_signature=[image_bytes, *search])
    archive.add_endpoint("caption_pixels", graph.caption_pixels,
                         input_signature=[tf.TensorSpec(shape=(None, *size, 3), dtype=tf.float32, name="pixels"),
                                          *search])
    return archive
