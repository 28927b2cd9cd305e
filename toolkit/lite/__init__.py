"""The light path: exported models answered through LiteRT, without importing TensorFlow or Keras.

`toolkit export` writes, beside each SavedModel it can convert, the model's numeric core as a LiteRT
flatbuffer and what preparing its inputs needs (vocabularies, image size, class names):

    NAME/VERSION/saved_model.pb, variables/, ...      the SavedModel (TF Serving)
    NAME/VERSION/assets.extra/toolkit.json            the metadata
    NAME/VERSION/assets.extra/litert/model.tflite     the numeric core, builtin ops only
    NAME/VERSION/assets.extra/litert/litert.json      its inputs and outputs, and the files beside it

TF Serving ignores `assets.extra/`. `toolkit export --format litert` writes the LiteRT form alone,
as a version folder holding `model.tflite`, `litert.json`, `toolkit.json` and the files they name:
what a phone needs. Inputs are prepared in Python by the same definitions the graph is built from
(`toolkit.preprocessing.tokens` for text, `toolkit.preprocessing.image`'s Pillow decoder for images),
so both runtimes answer alike; tests hold them to it.

Importing this module imports neither TensorFlow nor Keras, nor the LiteRT runtime until a model loads.
"""

import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.serving import LITE_METADATA as METADATA_FILE  # a LiteRT-only folder's (a SavedModel's: assets.extra/)
from toolkit.serving import LITE_MODEL as MODEL_FILE

RUNTIMES = ("auto", "litert", "tensorflow")
LITERT_DIR = Path("assets.extra") / "litert"  # inside a SavedModel's version folder
CONFIG_FILE = "litert.json"
SIGNATURE = "serving_default"


def lite_dir(model_dir):
    """The folder holding a version's LiteRT form (`model.tflite` and `litert.json`), or None if it has none."""
    for folder in (Path(model_dir) / LITERT_DIR, Path(model_dir)):
        if (folder / MODEL_FILE).is_file() and (folder / CONFIG_FILE).is_file():
            return folder
    return None


def is_lite_only(model_dir):
    """Whether a version folder is a LiteRT form alone (`toolkit export --format litert`), without a SavedModel."""
    model_dir = Path(model_dir)
    return not (model_dir / "saved_model.pb").is_file() and (model_dir / MODEL_FILE).is_file()


def runtime_version():
    """The installed LiteRT runtime's version, or None; asks the package metadata, imports nothing."""
    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return None


def runtime_installed():
    return importlib.util.find_spec("ai_edge_litert") is not None


def choose_runtime(model_dir, runtime="auto", converts=True):
    """"litert" or "tensorflow": the runtime that answers with the model in `model_dir`.

    `auto` takes LiteRT where the model has its LiteRT form, the runtime is installed and the
    task has a light predictor (`converts`); otherwise TensorFlow. `litert` and `tensorflow` insist,
    with one line saying why a model cannot be answered that way.
    """
    if runtime not in RUNTIMES:
        raise ToolkitError(f"runtime must be one of {', '.join(RUNTIMES)}. Received: {runtime!r}")
    has_lite = converts and lite_dir(model_dir) is not None
    if runtime == "tensorflow" or (runtime == "auto" and not is_lite_only(model_dir)
                                   and not (has_lite and runtime_installed())):
        if is_lite_only(model_dir):
            raise ToolkitError(f"{model_dir} holds a LiteRT model only (no SavedModel): use --runtime litert")
        return "tensorflow"
    if not has_lite:
        why = "this kind of model has no LiteRT form" if not converts else "it has no LiteRT form"
        raise ToolkitError(f"{model_dir} cannot run on LiteRT: {why} (export it again with this toolkit, "
                           "or use --runtime tensorflow)")
    if not runtime_installed():
        raise ToolkitError("the LiteRT runtime is not installed: pip install ai-edge-litert, or use --runtime tensorflow")
    return "litert"


def usable_cores():
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LiteModel:
    """A LiteRT flatbuffer's `serving_default` signature: `model(name=array, ...) -> {output name: array}`.

    Inputs may change shape from call to call (a batch's size and length); the interpreter resizes
    its tensors to them. What the runtime prints on start-up goes to the captured stderr, not the user's.
    """

    def __init__(self, folder):
        from toolkit.runtime import captured_stderr

        self.folder = Path(folder)
        try:
            with captured_stderr():
                from ai_edge_litert.interpreter import Interpreter

                self.interpreter = Interpreter(model_path=str(self.folder / MODEL_FILE), num_threads=usable_cores())
                self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as e:
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ToolkitError(f"cannot load the LiteRT model in {self.folder}: {message}") from None
        self.input_names = set(self.runner.get_input_details())
        self.output_names = set(self.runner.get_output_details())
        self.calls = 0

    def __call__(self, **inputs):
        from toolkit.runtime import captured_stderr

        self.calls += 1
        if self.calls > 1:
            return self.runner(**inputs)
        with captured_stderr():  # the first call creates the XNNPACK delegate, which says so on stderr
            return self.runner(**inputs)


def read_config(folder):
    """The JSON object of `litert.json` in FOLDER; ToolkitError if it is broken."""
    path = Path(folder) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ToolkitError(f"broken LiteRT model description {path}: {e}") from None
    if not isinstance(config, dict):
        raise ToolkitError(f"broken LiteRT model description {path}: not a JSON object")
    return config


class LitePredictor:
    """What every light predictor shares: the model's metadata checked as `toolkit.serving.Predictor` checks
    it, `litert.json`, and the flatbuffer loaded. Subclasses set `kind` and `metadata_fields`."""

    kind = None
    metadata_fields = {}
    input_names = ()  # what the flatbuffer's signature must take (a text classifier's come from litert.json)
    runtime = "litert"

    def __init__(self, path):
        from toolkit.serving import check_metadata, model_kind, read_metadata

        found, self.model_dir = model_kind(path)
        if found != self.kind:
            raise ToolkitError(f"{self.model_dir} holds a {found!r} model; this command needs a {self.kind!r} model")
        self.metadata = read_metadata(self.model_dir)
        check_metadata(self.metadata, self.metadata_fields, self.model_dir, self.kind)
        self.lite_dir = lite_dir(self.model_dir)
        if self.lite_dir is None:
            raise ToolkitError(f"{self.model_dir} has no LiteRT form; use --runtime tensorflow")
        self.config = read_config(self.lite_dir)
        self.model = LiteModel(self.lite_dir)
        self.check_inputs(self.input_names)

    def check_inputs(self, names):
        """ToolkitError unless the flatbuffer's signature takes each of `names`."""
        missing = [name for name in names if name not in self.model.input_names]
        if missing:
            raise ToolkitError(f"{self.model_dir} has no {missing[0]!r} input in its LiteRT form, which a {self.kind} "
                               "model has: its graph and its metadata do not belong together")


def predictor(model, runtime, full, light=None):
    """`light(model_dir)` where `choose_runtime` picks LiteRT for `model` (a name, model folder or version folder),
    else `full(model_dir)`: the one place that decides which runtime answers."""
    from toolkit.serving import find_model

    model_dir = find_model(model)
    return light(model_dir) if choose_runtime(model_dir, runtime, light is not None) == "litert" else full(model_dir)
