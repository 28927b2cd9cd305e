"""Image classification end to end: images -> CNN/ResNet -> training -> SavedModel taking image bytes
-> `ImageClassifier`.

`train()` is what `toolkit train images` runs, on any Keras backend (a lent GPU trains
it under JAX; the weights load into the TensorFlow model for export). `export_run()` turns a
run folder into a serving model; `evaluate()` scores an exported model on a test split;
`ImageClassifier` answers with one.
"""

import dataclasses
import math
import re
import time
from pathlib import Path

import numpy as np

from toolkit import config as settings
from toolkit.data import tfds_data
from toolkit.errors import ToolkitError
from toolkit.lite import LitePredictor
from toolkit.serving import ImagePredictor, answer_images, strings

KIND = "image_classifier"
COMMAND = "images"  # `toolkit train images`, `toolkit evaluate images`
SHIPPED_MODEL = "cifar10_resnet"
ENSEMBLES = False
DATASETS = ("cifar10", "fashion_mnist", "folder")  # and "tfds:NAME": a tensorflow-datasets image set
VALIDATION_BATCH = 256
TEST_BATCH = 500
ARCHITECTURES = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "plain20", "plain32", "plain44",
                 "plain56", "plain110", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "lenet5",
                 "alexnet", "vgg11", "vgg13", "vgg16", "vgg19")


@dataclasses.dataclass(frozen=True)
class TrainConfig(settings.RunConfig):
    """Everything that decides an image training run; stored as the run's config.json."""

    dataset: str = "cifar10"  # cifar10 | fashion_mnist | folder | tfds:NAME (toolkit.data.tfds_data)
    data_dir: str = None  # tfds:NAME: tfds' data_dir (default $TFDS_DATA_DIR, else ~/tensorflow_datasets)
    image_size: int = None  # folder and tfds data: resize to this square size (default: their own, else the first's)
    arch: str = "resnet20"
    resnet_version: int = 1  # CIFAR ResNets: 1 (post-activation) or 2 (pre-activation)
    shortcut: str = "A"  # CIFAR ResNets: A (zero padding) or B (projection)
    width: int = 16  # CIFAR ResNets: filters of the first stage
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    l2: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: int = 1
    label_smoothing: float = 0.0
    translate: int = 4  # augmentation: random shifts up to this many pixels (pad-and-crop)
    flip: bool = True  # augmentation: horizontal flips
    erase: float = 0.0  # augmentation: probability of random erasing (cutout)
    validation_split: float = 0.1
    cache: str = None  # decoded folder images: None (auto: not cached), "memory", "none", or a folder for cache files

    RENAMED = {"version": "resnet_version"}  # `--version` until 0.2
    RESUMABLE = settings.RunConfig.RESUMABLE + ("cache",)  # where pixels are kept, not which

    def validate(self):
        super().validate()
        if tfds_data.is_tfds(self.dataset):
            tfds_data.check_name(self.dataset)
        else:
            settings.choice(self, "dataset", DATASETS)
        settings.choice(self, "arch", ARCHITECTURES)
        settings.choice(self, "resnet_version", (1, 2))
        settings.choice(self, "shortcut", ("A", "B"))
        settings.positive(self, "width")
        settings.positive(self, "image_size", optional=True)
        settings.at_least(self, "warmup_epochs", 0)
        settings.at_least(self, "translate", 0)
        settings.at_least(self, "l2", 0)
        settings.fraction(self, "momentum", "label_smoothing", "erase")
        settings.fraction(self, "validation_split", open_zero=True)
        self.validate_cache()

    def validate_cache(self):
        """`cache` (`toolkit.config.cache_location`); cifar10 and fashion_mnist are arrays in memory: a folder
        or "none" applies to folder data only."""
        settings.cache_location(self)
        if self.cache not in (None, "memory") and self.dataset != "folder":
            raise ValueError(f"cache applies to --dataset folder: {self.dataset} is held in memory as arrays. "
                             f"Received: cache={self.cache!r}")


def build_model(config, num_classes, input_shape, pixel_mean=None, pixel_variance=None):
    """The architecture named by `config.arch`, with pixel scaling inside."""
    from toolkit.models import cnn, resnet

    common = dict(num_classes=num_classes, input_shape=input_shape, pixel_mean=pixel_mean,
                  pixel_variance=pixel_variance)
    match = re.fullmatch(r"(resnet|plain)(\d+)", config.arch)
    if match and int(match.group(2)) in resnet.IMAGENET_DEPTHS and config.arch.startswith("resnet"):
        return resnet.build_resnet(int(match.group(2)), l2=config.l2, **common)
    if match:
        return resnet.build_cifar_resnet(int(match.group(2)), version=config.resnet_version, shortcut=config.shortcut,
                                         residual=match.group(1) == "resnet", width=config.width, l2=config.l2,
                                         **common)
    if config.arch == "lenet5":
        return cnn.build_lenet5(**common)
    if config.arch == "alexnet":
        return cnn.build_alexnet(l2=config.l2, **common)
    if config.arch.startswith("vgg") and config.arch[3:].isdigit():
        return cnn.build_vgg(int(config.arch[3:]), l2=config.l2, **common)
    raise ValueError(f"arch must be one of {list(ARCHITECTURES)}. Received: arch={config.arch!r}")


def load_splits(config):
    from toolkit.data import images

    size = (config.image_size, config.image_size) if config.image_size else None
    load = tfds_data.image_splits if tfds_data.is_tfds(config.dataset) else images.load
    return load(config.dataset, config.data_dir, image_size=size, validation_split=config.validation_split,
                seed=config.seed)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What `train` needs of its data, however it is read: the facts config.json stores, and batches.

    `train` and `validation` yield (float32 images `[batch, H, W, C]`, float32 one-hot targets);
    `test` (or None) yields (float32 images, integer labels), read once by `score_batches`.
    """

    class_names: tuple
    image_shape: tuple
    pixel_mean: list
    pixel_variance: list
    fingerprint: dict
    train_examples: int
    validation_examples: int
    train: object
    validation: object
    test: object


def array_data(config, augment):
    """CIFAR-10 and Fashion-MNIST (and folder data without TensorFlow): all images decoded into memory, the fast path."""
    from toolkit.data.pipelines import array_batches
    from toolkit.training import data_fingerprint

    splits = load_splits(config)
    classes = len(splits.class_names)
    pixels = splits.train[0].reshape(-1, splits.image_shape[-1]) / 255.0

    def targets(labels):
        return np.eye(classes, dtype="float32")[labels]

    def test_batches(images, labels, batch_size=500):
        for start in range(0, len(labels), batch_size):
            yield images[start:start + batch_size].astype("float32"), labels[start:start + batch_size]

    augment = augment(splits.image_shape)
    return TrainingData(
        splits.class_names, splits.image_shape, pixels.mean(axis=0).tolist(), pixels.var(axis=0).tolist(),
        data_fingerprint(*splits.train, splits.validation[1]), len(splits.train[1]), len(splits.validation[1]),
        array_batches(splits.train[0], targets(splits.train[1]), config.batch_size, augment=augment, shuffle=True,
                      seed=config.seed),
        array_batches(splits.validation[0], targets(splits.validation[1]), 256),
        test_batches(*splits.test) if splits.test is not None else None)


def streamed_data(config, augment, stack, run):
    """A folder of class folders as a `tf.data` stream of its files (`toolkit.data.images.load_files`): memory holds
    the file list, the batches in flight and what `config.cache` asks to keep, never the data set.

    `config.cache`: None or "none", nothing (every epoch decodes every file again); "memory",
    the decoded pixels (uint8) after the first epoch; a folder, files `DIR/train-KEY*` and
    `DIR/validation-KEY*` (`Dataset.cache`) and the scans `DIR/scan-KEY.npz`, KEY naming the
    files, their order and the decoder (`ImageFiles.key`), so a stale cache is never read.
    Disk caches are written under `disk_cache`, entered on `stack` (by the chief of a multi-worker
    run: `Run.cache_folder`).
    """
    import tensorflow as tf

    from toolkit.data import images
    from toolkit.data.pipelines import decoded_batches, disk_cache

    folder = None if config.cache in (None, "none", "memory") else run.cache_folder(Path(config.cache))
    size = (config.image_size, config.image_size) if config.image_size else None
    splits = images.load_files(config.data_dir, size, config.validation_split, config.seed, cache_dir=folder)
    decode, classes = images.file_decoder(splits.image_shape), len(splits.class_names)
    in_memory = "memory" if config.cache == "memory" else None
    caches = {"train": in_memory, "validation": in_memory}
    if folder is not None:
        caches = {"train": folder / f"train-{splits.train.key(config.seed, config.batch_size)}",
                  "validation": folder / f"validation-{splits.validation.key(VALIDATION_BATCH)}"}
        stack.enter_context(disk_cache(caches.values(), f"--cache {folder} is being written by another training run "
                                                        "right now; wait for it, or give another --cache folder"))

    def batches(files, batch_size, **kwargs):
        return decoded_batches((np.asarray(files.paths), files.sizes, files.cuts), files.labels, decode, batch_size,
                               **kwargs)

    def one_hot(labels):
        return tf.one_hot(labels, classes, dtype=tf.float32)

    mean, variance = splits.pixel_moments()
    return TrainingData(
        splits.class_names, splits.image_shape, mean, variance, fingerprint(splits), len(splits.train),
        len(splits.validation),
        batches(splits.train, config.batch_size, target=one_hot, augment=augment(splits.image_shape), shuffle=True,
                seed=config.seed, cache=caches["train"]),
        batches(splits.validation, VALIDATION_BATCH, target=one_hot, cache=caches["validation"]),
        batches(splits.test, TEST_BATCH) if splits.test is not None else None)


def fingerprint(splits):
    """The training files ("class/file:size" of train and validation, sorted): what a resumed run must find again."""
    from toolkit.training import data_fingerprint

    names = splits.train.names(splits.class_names) + splits.validation.names(splits.class_names)
    return data_fingerprint(sorted(names))


def train(config, run_dir):
    """Trains in `run_dir` (resuming if interrupted), then scores the best model on the test split."""
    import contextlib
    import sys

    import keras

    from toolkit.data import images
    from toolkit.preprocessing.image import augmentation
    from toolkit.training import Run

    def augment(image_shape):
        return augmentation(image_shape, translate=config.translate, flip=config.flip, erase=config.erase,
                            seed=config.seed)

    with Run(run_dir, KIND, config) as run, contextlib.ExitStack() as stack:
        if images.streams(config.dataset):
            data = streamed_data(config, augment, stack, run)
        else:
            data = array_data(config, augment)
        run.write_config(class_names=list(data.class_names), image_shape=list(data.image_shape),
                         pixel_mean=data.pixel_mean, pixel_variance=data.pixel_variance,
                         backend=keras.backend.backend(), data=data.fingerprint)

        model = build_model(config, len(data.class_names), data.image_shape, data.pixel_mean, data.pixel_variance)
        optimizer = run.optimizer(steps_per_epoch=math.ceil(data.train_examples / config.batch_size),
                                  warmup_epochs=config.warmup_epochs, momentum=config.momentum,
                                  nesterov=config.nesterov)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        print(f"{model.name}: {model.count_params():,} parameters; {data.train_examples} train, "
              f"{data.validation_examples} validation images {data.image_shape}", file=sys.stderr)

        model, results = run.fit(model, data.train, data.validation, summary=False)
        results = {"arch": config.arch, "class_names": list(data.class_names), **results,
                   "backend": keras.backend.backend()}
        if data.test is not None:
            results.update(score_batches(model, data.test))
        return run.finish(results)


def score_batches(model, batches):
    """Test accuracy of a Keras model, plain and with test-time horizontal flips averaged in, over (float32 images,
    integer labels) batches: a `tf.data.Dataset` or any iterable; memory holds one batch."""
    import keras

    start = time.monotonic()
    plain = flip_averaged = examples = 0
    if hasattr(batches, "as_numpy_iterator"):
        batches = batches.as_numpy_iterator()
    # A plain call, not `predict_on_batch`: under a multi-worker strategy that would gather every
    # worker's copy of the batch; each worker scores the whole test split by itself instead.
    for images, labels in batches:
        images = np.asarray(images, "float32")
        probabilities = keras.ops.convert_to_numpy(model(images, training=False))
        flipped = keras.ops.convert_to_numpy(model(np.ascontiguousarray(images[:, :, ::-1]), training=False))
        plain += int(np.sum(probabilities.argmax(1) == labels))
        flip_averaged += int(np.sum((probabilities + flipped).argmax(1) == labels))
        examples += len(labels)
    return {"test": {"accuracy": plain / max(examples, 1), "accuracy_flip_averaged": flip_averaged / max(examples, 1)},
            "test_examples": examples, "test_seconds": round(time.monotonic() - start, 1)}


def image_classifier_archive(model, class_names, top_k=5, flip_average=False):
    """Two signatures, answering `{"label", "probability", "top_k_labels", "top_k_probabilities"}` per image:

    - `serving_default`: a batch of encoded images (`image_bytes`: JPEG, PNG, GIF or BMP; what
      TF Serving's REST API delivers from `{"b64": ...}`), decoded and resized in the graph,
      with an `error` per image: "" for a good one; for one that is not a readable image its
      message, an empty label and zero probabilities, while the other rows are answered;
    - `predict_pixels`: float pixels in [0, 255], `[batch, height, width, channels]`.

    With `flip_average`, the probabilities are averaged with those of the mirrored image.
    """
    import keras
    import tensorflow as tf

    from toolkit.preprocessing.image import decode_images

    height, width, channels = model.input_shape[1:]
    k = min(top_k, len(class_names))
    names = tf.constant(list(class_names), dtype=tf.string)
    archive = keras.export.ExportArchive()  # variables are tracked through the endpoints

    def classify(pixels):
        top = top_classes(model, pixels, k, flip_average)
        return {"label": tf.gather(names, top.indices[:, 0]), "probability": top.values[:, 0],
                "top_k_labels": tf.gather(names, top.indices), "top_k_probabilities": top.values}

    def serve_bytes(image_bytes):
        pixels, errors = decode_images(image_bytes, (height, width), channels)
        good = tf.equal(errors, "")
        answers = {name: tf.where(tf.reshape(good, [-1] + [1] * (len(value.shape) - 1)), value, tf.zeros_like(value))
                   for name, value in classify(pixels).items()}
        return {**answers, "error": errors}

    archive.add_endpoint("serving_default", serve_bytes,
                         input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="image_bytes")])
    archive.add_endpoint("predict_pixels", classify,
                         input_signature=[tf.TensorSpec(shape=(None, height, width, channels), dtype=tf.float32,
                                                        name="pixels")])
    return archive


def top_classes(model, pixels, k, flip_average):
    """`tf.math.top_k` of the class probabilities of float pixels `[batch, h, w, c]` (averaged with the mirrored
    images' with `flip_average`): the numeric core that the SavedModel and the LiteRT form share."""
    import tensorflow as tf

    probabilities = model(pixels, training=False)
    if flip_average:
        probabilities = (probabilities + model(tf.image.flip_left_right(pixels), training=False)) / 2.0
    return tf.math.top_k(probabilities, k=k)


def exported(run_dir, top_k=5, flip_average=None):
    """(the run's best model, its export metadata, k, flip_average): what both export forms read from a run.

    `flip_average` (test-time augmentation: average with the mirrored image) defaults to on
    for models trained with horizontal flips, which have learned both orientations.
    """
    import toolkit.layers.residual  # noqa: F401  (registers the custom layers for loading)
    from toolkit import training

    config = training.read_run(Path(run_dir), KIND)
    model = training.load_best(run_dir)
    if flip_average is None:
        flip_average = bool(config["train"].get("flip"))
    metadata = {"kind": KIND, "class_names": config["class_names"], "image_shape": config["image_shape"],
                "flip_average": bool(flip_average), "train": config["train"], "parameters": model.count_params()}
    if config["metrics"]:
        metadata["metrics"] = config["metrics"]
    return model, metadata, min(top_k, len(config["class_names"])), flip_average


def litert_form(run_dir, top_k=5, flip_average=None):
    """The LiteRT form: float pixels `[batch, h, w, c]` -> `top_k_probabilities`, `top_k_indices` (decoding and the
    class names stay in Python: `LiteImageClassifier`)."""
    return lite_form(*exported(run_dir, top_k, flip_average))


def lite_form(model, metadata, k, flip_average):
    """`litert_form` of what `exported` read from a run."""
    import tensorflow as tf

    from toolkit.lite.convert import LiteForm, to_litert

    shape = metadata["image_shape"]

    def core(pixels):
        top = top_classes(model, pixels, k, flip_average)
        return {"top_k_probabilities": top.values, "top_k_indices": top.indices}

    flatbuffer = to_litert(core, [tf.TensorSpec([None, *shape], tf.float32, name="pixels")], track=[model])
    return LiteForm(flatbuffer, {"inputs": {"pixels": shape}, "top_k": k}, {}, metadata)


def export_run(run_dir, to, name, version, top_k=5, flip_average=None):
    """Exports the best model of a run as `TO/NAME/VERSION` (image bytes in, labels out), with its LiteRT form."""
    from toolkit import export
    from toolkit.lite.convert import form_or_note
    from toolkit.preprocessing.image import sample_png

    model, metadata, k, flip_average = exported(run_dir, top_k, flip_average)
    archive = image_classifier_archive(model, metadata["class_names"], top_k=top_k, flip_average=flip_average)
    height, width, channels = metadata["image_shape"]
    warmup = [("serving_default", {"image_bytes": [sample_png(height, width, channels)]}),
              ("predict_pixels", {"pixels": np.zeros([1, height, width, channels], "float32")})]
    litert = form_or_note(lambda: lite_form(model, metadata, k, flip_average))
    return export.write_saved_model(archive, to, name, version, metadata, warmup=warmup, litert=litert)


def evaluate(model_path, dataset="cifar10", data_dir=None, confusion_png=None, on_progress=None, runtime="auto"):
    """Accuracy of an exported image classifier on the test split (through its pixels signature).

    `dataset` "tfds:NAME" scores the split a run on it scores (`tfds_data.scored_images`: "test", else
    "validation", named in the report's `split`), decoded at the model's size as it is served.
    `confusion_png`: a path for a figure of the confusion matrix. `on_progress(n, total)` is
    called as each chunk of n of the total images is scored (a command's progress bar). `runtime`: which
    answers (`toolkit.lite.choose_runtime`), named in the report.
    """
    from toolkit.data import images
    from toolkit.lite import predictor
    from toolkit.metrics import classification_report
    from toolkit.plots import plot_confusion_matrix

    classifier = predictor(model_path, runtime, ImageClassifier, LiteImageClassifier)
    facts = {}  # a tfds set's report also names the split scored
    if tfds_data.is_tfds(dataset):
        tfds_data.check_name(dataset)
        facts["split"], test = tfds_data.scored_images(dataset, data_dir, classifier.image_shape,
                                                       classifier.class_names)
        class_names = classifier.class_names
    else:
        splits = images.load(dataset, data_dir)
        if splits.test is None:
            raise ToolkitError(f"the {dataset} data in {data_dir} has no test split")
        if tuple(splits.class_names) != tuple(classifier.class_names):
            raise ToolkitError(f"the model's classes {classifier.class_names} are not the data's "
                               f"{list(splits.class_names)}")
        test, class_names = splits.test, splits.class_names
    pixels = test[0]
    start = time.monotonic()
    predictions = []
    if on_progress:
        on_progress(0, len(pixels))
    for first in range(0, len(pixels), 256):  # predict_pixels' batch: the same batches as one call
        chunk = pixels[first:first + 256].astype("float32")  # uint8 until scored: a quarter of the memory
        predictions += classifier.predict_pixels(chunk)
        if on_progress:
            on_progress(len(chunk), len(pixels))
    seconds = time.monotonic() - start
    truth = [class_names[i] for i in test[1]]
    report = classification_report(truth, [p["label"] for p in predictions], class_names)
    report.update(model=str(classifier.model_dir), runtime=classifier.runtime, **facts, examples=len(truth),
                  seconds=round(seconds, 1))
    if confusion_png:
        plot_confusion_matrix(report["confusion_matrix"], report["class_names"], confusion_png)
        report["confusion_png"] = str(confusion_png)
    return report


class ImageClassifier(ImagePredictor):
    """An exported image classifier: images in, labels and top-k out."""

    kind = KIND
    signature_names = ("serving_default", "predict_pixels")
    metadata_fields = {**ImagePredictor.metadata_fields, "class_names": strings}

    def __init__(self, path):
        super().__init__(path)
        self.serve_pixels = self.signatures["predict_pixels"]
        self.class_names = self.metadata["class_names"]

    def predict(self, images, batch_size=256):
        """`{"label", "probability", "top_k": [{"label", "probability"}, ...]}` per image, in the order given.

        An image is a path, encoded bytes (JPEG, PNG, GIF, BMP) or a numpy array of pixels in
        [0, 255] (`[height, width(, channels)]`, resized as the serving graph resizes; a 4-D
        array is a batch). One that cannot be read gets `{"error": message}` and the others
        are still answered.
        """
        return answer_images(images, self.image_shape, lambda pixels: self.predict_pixels(pixels, batch_size),
                             batch_size)

    def predict_pixels(self, pixels, batch_size=256):
        """`predict`'s answers for decoded images (`decode`) of the model's size, in the order given."""
        import tensorflow as tf

        results = []
        for start in range(0, len(pixels), batch_size):
            out = self.serve_pixels(pixels=tf.constant(np.asarray(pixels[start:start + batch_size], "float32")))
            labels = [[label.decode() for label in row] for row in out["top_k_labels"].numpy()]
            results += map(image_answer, labels, out["top_k_probabilities"].numpy())
        return results


def image_answer(labels, probabilities):
    """One image's answer from its top-k labels and probabilities, best first (both runtimes)."""
    top = [{"label": label, "probability": round(float(p), 6)} for label, p in zip(labels, probabilities)]
    return {"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top}


class LiteImageClassifier(LitePredictor):
    """`ImageClassifier` through the model's LiteRT form: images decoded by Pillow as the graph decodes them
    (`toolkit.preprocessing.image.light_pixels`), the same answers, no TensorFlow."""

    kind = KIND
    metadata_fields = ImageClassifier.metadata_fields
    input_names = ("pixels",)

    def __init__(self, path):
        super().__init__(path)
        self.image_shape = tuple(self.metadata["image_shape"])
        self.class_names = self.metadata["class_names"]

    def predict(self, images, batch_size=256):
        """`ImageClassifier.predict`."""
        return answer_images(images, self.image_shape, lambda pixels: self.predict_pixels(pixels, batch_size),
                             batch_size, light=True)

    def predict_pixels(self, pixels, batch_size=256):
        """`ImageClassifier.predict_pixels`."""
        results = []
        for start in range(0, len(pixels), batch_size):
            out = self.model(pixels=np.ascontiguousarray(pixels[start:start + batch_size], "float32"))
            labels = [[self.class_names[i] for i in row] for row in out["top_k_indices"]]
            results += map(image_answer, labels, out["top_k_probabilities"])
        return results


PREDICTOR = ImageClassifier
LITE_PREDICTOR = LiteImageClassifier
