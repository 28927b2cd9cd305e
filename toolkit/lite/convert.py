"""A model's numeric core as a LiteRT flatbuffer, with builtin ops only, and where `toolkit export` writes it.

Builtin ops only, because the pip LiteRT runtime (`ai-edge-litert`) runs no TensorFlow (Flex) ops: a
Keras LSTM or GRU converts to Flex `TensorList*` ops, so recurrent layers are rewritten. The
forecaster's LSTM reads a window of fixed length and is unrolled (`unrolled`); the text
classifiers' reviews run to 1,000 steps and are rewritten as while loops (`toolkit.lite.recurrent`).
String work stays outside: a tokeniser or an image decoder runs in Python before the flatbuffer.

Each task that converts has `litert_form(run_dirs) -> LiteForm`. Exports write it inside the version's
temporary folder, before the rename (`write_form`), so a version appears whole or not at all.
"""

import dataclasses
import json
import sys
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.lite import CONFIG_FILE, LITERT_DIR, METADATA_FILE, MODEL_FILE, SIGNATURE

# Facts of an export that differ between two exports of the same runs: ignored when `--into` checks that
# a LiteRT form belongs to a SavedModel.
EXPORT_FACTS = ("name", "version", "toolkit_version", "exported_at", "run")


@dataclasses.dataclass
class LiteForm:
    """A model's LiteRT form: the flatbuffer, `litert.json` (`config`), the files beside them ({name: text},
    e.g. vocabularies) and the model's metadata, the same `toolkit.json` its SavedModel export writes."""

    flatbuffer: bytes
    config: dict
    files: dict
    metadata: dict


def to_litert(function, input_signature, track=()):
    """The LiteRT flatbuffer of `function` (tensors in, a dict of tensors out) with builtin ops only and float32
    weights; `track`: the Keras models (or layers) whose variables it reads.

    It goes through a SavedModel written by `keras.export.ExportArchive`, as the serving models are: the
    flatbuffer keeps the signature's input and output names (from bare concrete functions it keeps none).
    ToolkitError naming the first op that is not a builtin where the graph does not convert.
    """
    import tempfile

    import keras

    from toolkit.runtime import captured_stderr, import_tensorflow

    tf = import_tensorflow()
    archive = keras.export.ExportArchive()
    for model in track:
        archive.track(model)
    archive.add_endpoint(SIGNATURE, function, input_signature=input_signature)
    stderr = None
    try:
        with tempfile.TemporaryDirectory() as folder, captured_stderr() as stderr:
            archive.write_out(folder, verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=[SIGNATURE])
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            converter.allow_custom_ops = False
            return converter.convert()
    except Exception as e:  # ConverterError, or an error of the MLIR passes  # noqa: BLE001
        text = f"{e}\n{stderr.text}" if stderr is not None else str(e)
        reason = next((line.strip() for line in text.splitlines() if "op" in line and "error" in line.lower()),
                      text.strip().splitlines()[0] if text.strip() else type(e).__name__)
        raise ToolkitError(f"the model does not convert to LiteRT builtin ops: {reason[:300]}") from None


def unrolled(model):
    """A copy of a Keras model whose recurrent layers are unrolled (`unroll=True`), same weights: what converts
    to builtin ops where the number of steps is fixed (a forecaster's window)."""
    import keras

    def unroll(config):
        if isinstance(config, dict):
            if config.get("class_name") in ("LSTM", "GRU", "SimpleRNN"):
                config["config"]["unroll"] = True
            for value in config.values():
                unroll(value)
        elif isinstance(config, list):
            for value in config:
                unroll(value)
        return config

    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a Keras model. Received: {type(model).__name__}")
    copy = model.__class__.from_config(unroll(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def form_or_note(make_form):
    """`make_form()`, or None and one `Note:` line on stderr where the model does not convert (a graph
    with ops that are no builtins, or a model the rewrites do not cover): the SavedModel is still exported, and
    answered through TensorFlow."""
    try:
        return make_form()
    except (ToolkitError, ValueError) as e:
        print(f"Note: no LiteRT form written ({e}); the SavedModel answers through TensorFlow", file=sys.stderr)
        return None


def write_form(folder, form, with_metadata=False):
    """Writes `form` into FOLDER (which must not exist yet or be empty): `model.tflite`, `litert.json`, its files,
    and with `with_metadata` the model's `toolkit.json` (a LiteRT-only version folder)."""
    from toolkit.atomic import write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(form.flatbuffer)
    write_json(folder / CONFIG_FILE, {"signature": SIGNATURE, **form.config})
    for name, text in form.files.items():
        (folder / name).write_text(text, encoding="utf-8")
    if with_metadata:
        write_json(folder / METADATA_FILE, form.metadata)


def add_to_version(form, model_dir):
    """Adds `form` to an exported SavedModel version, as `assets.extra/litert/`: written to a temporary folder and
    renamed, the SavedModel's own files untouched. Refused where the version has a LiteRT form already, or
    where its metadata (less what differs between two exports: `EXPORT_FACTS`) is not the form's: the runs
    must be the ones the version was exported from."""
    from toolkit.atomic import atomic_path
    from toolkit.serving import read_metadata

    model_dir = Path(model_dir)
    if not (model_dir / "saved_model.pb").is_file():
        raise ToolkitError(f"--into {model_dir}: not a SavedModel version folder")
    target = model_dir / LITERT_DIR
    if target.exists():
        raise ToolkitError(f"{target} already exists and is never overwritten")
    metadata = read_metadata(model_dir)
    if metadata is None or comparable(metadata) != comparable(form.metadata):
        differ = sorted(k for k in set(comparable(metadata or {})) | set(comparable(form.metadata))
                        if comparable(metadata or {}).get(k) != comparable(form.metadata).get(k))
        raise ToolkitError(f"--into {model_dir}: the runs given are not the ones it was exported from "
                           f"(the metadata differ in {', '.join(differ) or 'kind'})")
    with atomic_path(target) as tmp:
        write_form(tmp, form)
    return target


def comparable(metadata):
    """`metadata` less the facts of one export (`EXPORT_FACTS`), at any depth, as plain JSON values."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in EXPORT_FACTS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(json.dumps(metadata)))
