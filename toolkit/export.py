"""Writing end-to-end serving models as SavedModels in TF Serving's layout: `TO/NAME/VERSION/`.

Each task builds its `keras.export.ExportArchive` (raw inputs such as text strings or encoded
image bytes in `serving_default`, a dict of self-explaining outputs); this module writes it.
Beside the graph, the version folder holds `assets.extra/toolkit.json` (TF Serving's place
for extra files): what kind of model it is and what it was trained on, so the command line
can refuse a model of the wrong kind; where the task gives examples,
`assets.extra/tf_serving_warmup_requests`: requests TF Serving replays when it loads the
version, so that the first client does not wait for the graph to warm up; and, where the model
converts, its LiteRT form in `assets.extra/litert/` (`toolkit.lite`), which the command line answers
with without importing TensorFlow.
"""

import contextlib
import dataclasses
import datetime
from pathlib import Path

import toolkit
from toolkit.atomic import atomic_path, folder_lock, remove_leftovers, write_json
from toolkit.errors import ToolkitError
from toolkit.serving import METADATA_PATH

# The file TF Serving replays when it loads a version: a TFRecord of PredictionLog protos, at most 1,000.
WARMUP_PATH = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_REQUESTS = 1000


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


def write_saved_model(archive, to, name, version, metadata, warmup=None, litert=None, extras=None):
    """Writes `archive` to `TO/NAME/VERSION` through a temporary folder renamed into place.

    An existing version is never overwritten: TF Serving may be serving it right now. Exports
    to one model folder take turns (a lock file in it, which TF Serving ignores like any name
    that is not a version number), so of two racing exports the second is refused in one line;
    what killed exports left behind is removed first.

    `warmup`: requests TF Serving replays when it loads the version (see `write_warmup_requests`),
    checked against its signatures before the rename, so a version is never published with requests
    that would make TF Serving refuse to load it. `litert`: the model's `toolkit.lite.convert.LiteForm`,
    written into `assets.extra/litert/` in the same temporary folder. `extras(folder)`: writes a task's own
    files into the version folder, before it is renamed into place.
    """
    from toolkit.lite import LITERT_DIR
    from toolkit.lite.convert import write_form

    with new_version(to, name, version) as (tmp, facts):
        archive.write_out(str(tmp), verbose=False)
        write_json(tmp / METADATA_PATH, {**metadata, **facts})
        if warmup:
            write_warmup_requests(tmp, warmup, model_name=name)
        if litert is not None:
            write_form(tmp / LITERT_DIR, litert)
        if extras is not None:
            extras(tmp)
    return version_dir(to, name, version)


def write_lite_model(form, to, name, version):
    """Writes a LiteRT form alone as `TO/NAME/VERSION` (`toolkit export --format litert`): `model.tflite`,
    `litert.json`, the files they name and `toolkit.json`, through a temporary folder renamed into place."""
    from toolkit.lite.convert import write_form

    with new_version(to, name, version) as (tmp, facts):
        write_form(tmp, dataclasses.replace(form, metadata={**form.metadata, **facts}), with_metadata=True)
    return version_dir(to, name, version)


@contextlib.contextmanager
def new_version(to, name, version):
    """Yields (a temporary folder, the export's facts for the metadata) that becomes `TO/NAME/VERSION` when the
    block succeeds. An existing version is never overwritten: TF Serving may be serving it right now.
    Exports to one model folder take turns (a lock file in it, which TF Serving ignores like any name that
    is not a version number); what killed exports left behind is removed first."""
    target = version_dir(to, name, version)
    facts = {"name": name, "version": version, "toolkit_version": toolkit.__version__,
             "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with folder_lock(target.parent, f"another export to {target.parent} is running; wait for it, then export again"):
        remove_leftovers(target.parent)
        if target.exists():
            raise ToolkitError(f"{target} already exists and is never overwritten; "
                               f"export as --version {next_version(to, name)}")
        with atomic_path(target) as tmp:
            yield tmp, facts


def write_warmup_requests(folder, requests, model_name=None):
    """Writes `requests`, a list of `(signature_name, {input_name: numpy array or list})`, as the
    TFRecord of `PredictionLog`s that TF Serving replays from FOLDER/assets.extra/tf_serving_warmup_requests.

    FOLDER is a version folder holding its SavedModel. Each request is checked against the signature
    it names there and its values are converted to that signature's dtypes: a warm-up request that
    fails makes TF Serving refuse to load the whole version. Every input needs a batch dimension,
    the same number of rows in each, as TF Serving's batching merges requests along it.
    `model_name` (default: FOLDER's parent, as in TF Serving's layout NAME/VERSION) goes into each
    request's model spec.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    folder = Path(folder)
    if not requests or len(requests) > MAX_WARMUP_REQUESTS:
        raise ValueError(f"warm-up needs 1 to {MAX_WARMUP_REQUESTS} requests (TF Serving reads no more). "
                         f"Received: {len(requests or [])}")
    signatures = serving_signatures(folder)
    model_name = model_name or folder.resolve().parent.name
    logs = []
    for index, (signature_name, inputs) in enumerate(requests):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
        for input_name, tensor in warmup_tensors(signatures, signature_name, inputs, f"warm-up request {index}"):
            request.inputs[input_name].CopyFrom(tensor)
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    with atomic_path(folder / WARMUP_PATH) as tmp:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for log in logs:
                writer.write(log.SerializeToString())
    return folder / WARMUP_PATH


def serving_signatures(folder):
    """{signature name: SignatureDef} of the SavedModel in FOLDER, as TF Serving reads them (the "serve" graph)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((Path(folder) / "saved_model.pb").read_bytes())
    graph = next((g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags), saved_model.meta_graphs[0])
    return dict(graph.signature_def)


def warmup_tensors(signatures, signature_name, inputs, what):
    """(input name, TensorProto) for each of `inputs`, in the dtype its signature takes; ValueError naming
    `what` when the signature, the names, the ranks or the rows do not fit."""
    import tensorflow as tf

    if signature_name not in signatures:
        raise ValueError(f"{what}: the model has no signature {signature_name!r} (it has {sorted(signatures)})")
    specs = signatures[signature_name].inputs
    if set(inputs) != set(specs):
        raise ValueError(f"{what}: {signature_name!r} takes the inputs {sorted(specs)}. Received: {sorted(inputs)}")
    tensors, rows = [], set()
    for name, value in inputs.items():
        spec = specs[name]
        try:
            tensor = tf.make_tensor_proto(value, dtype=tf.dtypes.as_dtype(spec.dtype))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what}: input {name!r} is not {tf.dtypes.as_dtype(spec.dtype).name}: {e}") from None
        shape = [d.size for d in tensor.tensor_shape.dim]
        expected = [d.size for d in spec.tensor_shape.dim]
        if not shape or (not spec.tensor_shape.unknown_rank and (
                len(shape) != len(expected) or any(e not in (-1, s) for e, s in zip(expected, shape)))):
            raise ValueError(f"{what}: input {name!r} has the shape {shape}; {signature_name!r} takes "
                             f"{expected} (-1: any size), and TF Serving's batching needs a batch dimension")
        rows.add(shape[0])
        tensors.append((name, tensor))
    if len(rows) > 1:
        raise ValueError(f"{what}: the inputs of one request need the same number of rows. Received: {sorted(rows)}")
    return tensors
