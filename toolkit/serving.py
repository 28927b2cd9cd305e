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
# Where models are looked up by name, in this order (`model_search_path`): the folders of $TOOLKIT_MODELS_DIR,
# the repository's saved_models/ (a checkout or an editable install: every version), and the copy a wheel
# installs inside the package (the newest version of each shipped model; setup.py puts it there).
SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "saved_models"
PACKAGED_MODELS = Path(__file__).resolve().parent / "saved_models"
# Beside the graph, TF Serving's place for extra files: what kind of model it is and what it was trained on.
METADATA_PATH = Path("assets.extra") / "toolkit.json"
LITE_MODEL, LITE_METADATA = "model.tflite", "toolkit.json"  # a LiteRT-only version folder (`toolkit.lite`)


def is_version(folder):
    """Whether `folder` is a model version: a SavedModel, or a LiteRT form alone (`toolkit export --format litert`)."""
    folder = Path(folder)
    return (folder / "saved_model.pb").is_file() or (folder / LITE_MODEL).is_file()


def model_search_path():
    """The folders searched for a model by name, in order: each folder of `$TOOLKIT_MODELS_DIR` (several
    separated by os.pathsep, like PATH), the repository's saved_models/, then the package's copy.

    A checkout finds its own models first, so an editable install never sees a stale copy; a plain
    `pip install` has only the package's copy; the variable puts your own models before both.
    """
    own = [Path(folder) for folder in os.environ.get(MODELS_DIR_ENV, "").split(os.pathsep) if folder]
    return own + [SHIPPED_MODELS, PACKAGED_MODELS]


def models_dir():
    """The first folder of the search path that exists: where a command's shipped model is by default
    (`models_dir() / NAME`; a NAME missing there is looked up in the rest of the path, see `find_model`)."""
    folders = model_search_path()
    return next((folder for folder in folders if folder.is_dir()), folders[0])


def found_models():
    """{name: model folder} of the models in the search path, the first of each name (the one `find_model`
    picks), by name: the folders there that hold a SavedModel or numbered version folders."""
    found = {}
    for folder in model_search_path():
        for model in sorted(_listed(folder)) if folder.is_dir() else []:
            if model.name not in found and not model.name.startswith(".") and model.is_dir() and (
                    is_version(model) or any(p.name.isdigit() for p in _listed(model))):
                found[model.name] = model
    return dict(sorted(found.items()))


def version_folders(model):
    """The numbered version folders of a TF Serving model folder that hold a model (`is_version`), newest first."""
    versions = [p for p in _listed(model) if p.name.isdigit() and is_version(p)]
    return sorted(versions, key=lambda p: int(p.name), reverse=True)


def model_versions(model):
    """The version numbers of a TF Serving model folder (`version_folders`), newest first."""
    return [int(p.name) for p in version_folders(model)]


def _listed(folder):
    """The entries of `folder`; ToolkitError when it cannot be listed (permissions, a vanished folder)."""
    try:
        return list(Path(folder).iterdir())
    except OSError as e:
        raise ToolkitError(f"{folder}: cannot list the folder: {e.strerror or e}") from None


def find_model(model):
    """The version folder of a model given by name or by path.

    A plain name ("sentiment": no folder separator) is the first model folder of that name in
    `model_search_path()`, its newest version; only where there is none is it a folder here (write
    `./sentiment` for a folder of yours that shares a shipped model's name). Anything else is a
    path: a TF Serving model folder (its newest version) or a version folder; `FOLDER/NAME` for a
    FOLDER of the search path counts as the name. Otherwise one ToolkitError line that says where
    it looked and how to point at the model.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise ToolkitError(f"a model is given by its name or its folder. Received: {model!r}")
    path = Path(model)
    folders = model_search_path()
    name = path.name if path.parent in folders else os.fspath(model)
    plain = name not in ("", ".", "..") and os.sep not in name and "/" not in name
    if plain:
        for folder in folders:
            if (folder / name).exists():
                return resolve_model_dir(folder / name)
    if path.exists():
        return resolve_model_dir(path)
    if not plain:
        raise ToolkitError(f"no such model: {path} (give an existing model folder with --model PATH, "
                           "or a model's name: see `toolkit models`)")
    searched = [f for f in folders if f.is_dir() or f not in (SHIPPED_MODELS, PACKAGED_MODELS)]  # yours even if missing
    looked = ", ".join(str(f) if f.is_dir() else f"{f} (no such folder)" for f in searched) or "no folder of models"
    raise ToolkitError(f"no model named {name!r} in {looked}; give its folder with --model PATH, or set "
                       f"{MODELS_DIR_ENV} to the folder that holds {name}/")


def resolve_model_dir(path):
    """A version folder itself (a SavedModel, or a LiteRT form alone), or the newest numbered version under
    a TF Serving model folder; a path that does not exist may be a model's name (`find_model`)."""
    path = Path(path)
    if not path.exists():
        return find_model(path)
    if is_version(path):
        return path
    versions = version_folders(path) if path.is_dir() else []
    if versions:
        return versions[0]
    raise ToolkitError(f"{path} is not a model: no saved_model.pb in it or in a numbered version folder")


def read_metadata(model_dir):
    """The toolkit metadata of an exported model (a JSON object with its kind), or None for a SavedModel we did not write."""
    path = Path(model_dir) / METADATA_PATH
    if not path.exists() and not (Path(model_dir) / "saved_model.pb").is_file():
        path = Path(model_dir) / LITE_METADATA
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
    runtime = "tensorflow"  # the light predictors (`toolkit.lite.LitePredictor`) answer "litert"

    def __init__(self, path):
        self.signatures, self.metadata, self.model_dir = load_saved_model(path, self.kind, self.op_libraries)
        check_metadata(self.metadata, self.metadata_fields, self.model_dir, self.kind)
        missing = [name for name in self.signature_names if name not in self.signatures]
        if missing:
            raise ToolkitError(f"{self.model_dir} has no {missing[0]!r} signature, which a {self.kind} model has: "
                               "its graph and its metadata do not belong together")

    def signature(self, name):
        """The signature `name`; ToolkitError if the model predates it (exported by an older toolkit)."""
        if name not in self.signatures:
            exported_by = self.metadata.get("toolkit_version", "an older toolkit")
            raise ToolkitError(f"{self.model_dir} has no {name!r} signature: it was exported by toolkit {exported_by}; "
                               "export its training run again with this toolkit for this feature")
        return self.signatures[name]


def check_metadata(metadata, fields, model_dir, kind):
    """ToolkitError unless each of `fields` ({name: check}) is in `metadata` and passes its check."""
    for name, check in fields.items():
        if name not in metadata or not check(metadata[name]):
            raise ToolkitError(f"broken model metadata in {model_dir}: {name!r} is missing or not "
                               f"{check.__doc__} (a {kind} model needs it)")


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
    """(beam size, length penalty) for a decoder, the model's own by default; ToolkitError for settings
    a search cannot use."""
    from toolkit.config import MAX_BEAM, MAX_LENGTH_PENALTY

    beam_size = metadata["beam_size"] if beam_size is None else beam_size
    length_penalty = metadata["length_penalty"] if length_penalty is None else length_penalty
    if not positive_integer(beam_size) or beam_size > MAX_BEAM:
        raise ToolkitError(f"beam size must be a whole number from 1 to {MAX_BEAM}. Received: {beam_size!r}")
    if not number(length_penalty) or not 0 <= length_penalty <= MAX_LENGTH_PENALTY:
        raise ToolkitError(f"length penalty must be a number from 0 to {MAX_LENGTH_PENALTY:g}. "
                           f"Received: {length_penalty!r}")
    return beam_size, float(length_penalty)


def search_inputs(signature, rows, beam_size, length_penalty):
    """The `beam_size` and `length_penalty` tensors a decoder's signature takes for `rows` inputs: one per
    row (every input batched, since toolkit 0.2), or one scalar each (models exported by toolkit 0.1)."""
    import tensorflow as tf

    specs = signature.structured_input_signature[1]
    shape = [rows] if specs["beam_size"].shape.rank else []
    return {"beam_size": tf.fill(shape, tf.constant(beam_size, tf.int32)),
            "length_penalty": tf.fill(shape, tf.constant(length_penalty, tf.float32))}


def single_or_list(items, single):
    """`items` as a list, where one item of type `single` (a string, a path) counts as a list of one;
    ToolkitError for what is no collection of items (None, a number, a mapping)."""
    if isinstance(items, single):
        return [items]
    if items is None or isinstance(items, (dict, bytes, bytearray, int, float)) or not hasattr(items, "__iter__"):
        raise ToolkitError(f"expected a list of inputs (or a single one). Received: {type(items).__name__}")
    return list(items)


def texts_of(texts):
    """`texts` as a list of strings (one string counts as a list of one); ToolkitError naming the first
    item that is not a string."""
    texts = single_or_list(texts, str)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ToolkitError(f"input {index} is not a string (it is {type(text).__name__})")
    return texts


def batch_size_of(batch_size):
    """`batch_size` if it is a positive whole number; ToolkitError otherwise."""
    if not positive_integer(batch_size):
        raise ToolkitError(f"batch size must be a whole number of at least 1. Received: {batch_size!r}")
    return batch_size


class ImagePredictor(Predictor):
    """A predictor whose inputs are images: the size its metadata gives, read as its serving graph reads them."""

    metadata_fields = {"image_shape": image_shape}

    def __init__(self, path):
        super().__init__(path)
        self.image_shape = tuple(self.metadata["image_shape"])

    def decode(self, data, name="image"):
        """The pixels the model reads, from encoded image bytes (decoded as its serving graph does)."""
        from toolkit.preprocessing.image import decode_pixels

        return decode_pixels(data, self.image_shape, name)

    def pixels(self, image, name="image"):
        """The pixels the model reads from one image (a path, encoded bytes or an array: `answer_images`);
        ToolkitError if it is not a readable image."""
        pixels = _pixels(image, name, self.image_shape)
        if isinstance(pixels, ToolkitError):
            raise pixels
        return pixels


def answer_images(images, image_shape, answer, batch_size, light=False):
    """`answer(pixels [n, h, w, c]) -> list of dicts` over `images`, in order, a batch at a time;
    `{"error": message}` in the place of each image that cannot be read, while the others are answered.

    An image is a path (str or os.PathLike), encoded bytes (JPEG, PNG, GIF or BMP: checked and
    decoded as the serving graph decodes them) or a numpy array `[height, width(, channels)]` of
    values in [0, 255]; an array `[n, height, width, channels]` counts as n images, and one path,
    bytes or array as a list of one. Memory holds one batch of pixels at a time. `light`: read without
    TensorFlow (`toolkit.preprocessing.image.light_pixels`), for the LiteRT path.
    """
    import itertools

    import numpy as np

    batch_size_of(batch_size)
    if isinstance(images, (str, bytes, bytearray, memoryview, os.PathLike)) or (
            isinstance(images, np.ndarray) and images.dtype.kind in "biuf" and 2 <= images.ndim <= 3):
        images = [images]
    elif images is None or isinstance(images, dict) or not hasattr(images, "__iter__"):
        raise ToolkitError(f"expected images (a list of paths, bytes or arrays, or one). Received: {images!r:.80}")
    numbered = enumerate(images)
    results = []
    while batch := list(itertools.islice(numbered, batch_size)):
        pixels = [_pixels(image, f"image {index}", image_shape, light) for index, image in batch]
        good = [p for p in pixels if not isinstance(p, ToolkitError)]
        answers = iter(answer(np.stack(good)) if good else [])
        results += [{"error": str(p)} if isinstance(p, ToolkitError) else next(answers) for p in pixels]
    return results


def _pixels(image, name, image_shape, light=False):
    """One image as the model's pixels, or the ToolkitError that says why it is not one; a path names
    itself in the message, other images go by `name`. `light`: without TensorFlow (Pillow)."""
    import numpy as np

    from toolkit.preprocessing.image import MAX_IMAGE_BYTES, array_pixels, decode_pixels, light_pixels
    from toolkit.user_files import read_bytes

    decode = light_pixels if light else decode_pixels
    try:
        if isinstance(image, (str, os.PathLike)):
            return decode(read_bytes(os.fspath(image), MAX_IMAGE_BYTES), image_shape, os.fspath(image))
        if isinstance(image, (bytes, bytearray, memoryview)):
            return decode(bytes(image), image_shape, name)
        if isinstance(image, np.ndarray):
            return array_pixels(image, image_shape, name, light=light)
        raise ToolkitError(f"{name}: {type(image).__name__} is not an image "
                           "(a path, encoded bytes or a numpy array expected)")
    except ToolkitError as e:
        return e
