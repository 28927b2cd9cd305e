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
from toolkit.errors import ToolkitError
from toolkit.serving import Predictor, image_shape, strings

KIND = "image_classifier"
COMMAND = "images"  # `toolkit train images`, `toolkit evaluate images`
SHIPPED_MODEL = "cifar10_resnet"
ENSEMBLES = False
DATASETS = ("cifar10", "fashion_mnist", "folder")
ARCHITECTURES = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "plain20", "plain32", "plain44",
                 "plain56", "plain110", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "lenet5",
                 "alexnet", "vgg11", "vgg13", "vgg16", "vgg19")


@dataclasses.dataclass(frozen=True)
class TrainConfig(settings.RunConfig):
    """Everything that decides an image training run; stored as the run's config.json."""

    dataset: str = "cifar10"  # cifar10 | fashion_mnist | folder
    data_dir: str = None
    image_size: int = None  # folder data: resize to this square size (default: the first image's)
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

    RENAMED = {"version": "resnet_version"}  # `--version` until 0.2

    def validate(self):
        super().validate()
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
    return images.load(config.dataset, config.data_dir, image_size=size,
                       validation_split=config.validation_split, seed=config.seed)


def train(config, run_dir):
    """Trains in `run_dir` (resuming if interrupted), then scores the best model on the test split."""
    import sys

    import keras

    from toolkit.data.pipelines import array_batches
    from toolkit.preprocessing.image import augmentation
    from toolkit.training import Run, data_fingerprint

    with Run(run_dir, KIND, config) as run:
        splits = load_splits(config)
        classes = len(splits.class_names)
        pixels = splits.train[0].reshape(-1, splits.image_shape[-1]) / 255.0
        mean, variance = pixels.mean(axis=0).tolist(), pixels.var(axis=0).tolist()
        run.write_config(class_names=list(splits.class_names), image_shape=list(splits.image_shape), pixel_mean=mean,
                         pixel_variance=variance, backend=keras.backend.backend(),
                         data=data_fingerprint(*splits.train, splits.validation[1]))

        def targets(labels):
            return np.eye(classes, dtype="float32")[labels]

        augment = augmentation(splits.image_shape, translate=config.translate, flip=config.flip, erase=config.erase,
                               seed=config.seed)
        train_batches = array_batches(splits.train[0], targets(splits.train[1]), config.batch_size, augment=augment,
                                      shuffle=True, seed=config.seed)
        validation_batches = array_batches(splits.validation[0], targets(splits.validation[1]), 256)

        model = build_model(config, classes, splits.image_shape, mean, variance)
        optimizer = run.optimizer(steps_per_epoch=math.ceil(len(splits.train[0]) / config.batch_size),
                                  warmup_epochs=config.warmup_epochs, momentum=config.momentum,
                                  nesterov=config.nesterov)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        print(f"{model.name}: {model.count_params():,} parameters; {len(splits.train[0])} train, "
              f"{len(splits.validation[0])} validation images {splits.image_shape}", file=sys.stderr)

        model, results = run.fit(model, train_batches, validation_batches, summary=False)
        results = {"arch": config.arch, "class_names": list(splits.class_names), **results,
                   "backend": keras.backend.backend()}
        if splits.test is not None:
            results.update(score_arrays(model, splits.test[0], splits.test[1]))
        return run.finish(results)


def score_arrays(model, images, labels, batch_size=500):
    """Test accuracy of a Keras model, plain and with test-time horizontal flips averaged in."""
    start = time.monotonic()
    plain = model.predict(images.astype("float32"), batch_size=batch_size, verbose=0)
    flipped = model.predict(images[:, :, ::-1].astype("float32"), batch_size=batch_size, verbose=0)
    return {"test": {"accuracy": float(np.mean(plain.argmax(1) == labels)),
                     "accuracy_flip_averaged": float(np.mean((plain + flipped).argmax(1) == labels))},
            "test_examples": int(len(labels)), "test_seconds": round(time.monotonic() - start, 1)}


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


def export_run(run_dir, to, name, version, top_k=5, flip_average=None):
    """Exports the best model of a run as `TO/NAME/VERSION` (image bytes in, labels out).

    `flip_average` (test-time augmentation: average with the mirrored image) defaults to on
    for models trained with horizontal flips, which have learned both orientations.
    """
    import keras

    import toolkit.layers.residual  # noqa: F401  (registers the custom layers for loading)
    from toolkit import export, training

    run_dir = Path(run_dir)
    config = training.read_run(run_dir, KIND)
    model = keras.saving.load_model(run_dir / training.BEST_MODEL, compile=False)
    metrics = config["metrics"]
    if flip_average is None:
        flip_average = bool(config["train"].get("flip"))
    archive = image_classifier_archive(model, config["class_names"], top_k=top_k, flip_average=flip_average)
    metadata = {"kind": KIND, "class_names": config["class_names"], "image_shape": config["image_shape"],
                "flip_average": bool(flip_average), "train": config["train"], "parameters": model.count_params()}
    if metrics:
        metadata["metrics"] = metrics
    return export.write_saved_model(archive, to, name, version, metadata)


def evaluate(model_path, dataset="cifar10", data_dir=None):
    """Accuracy of an exported image classifier on the test split (through its pixels signature)."""
    from toolkit.data import images
    from toolkit.metrics import classification_report

    classifier = ImageClassifier(model_path)
    splits = images.load(dataset, data_dir)
    if splits.test is None:
        raise ToolkitError(f"the {dataset} data in {data_dir} has no test split")
    if tuple(splits.class_names) != tuple(classifier.class_names):
        raise ToolkitError(f"the model's classes {classifier.class_names} are not the data's {list(splits.class_names)}")
    start = time.monotonic()
    predictions = classifier.predict_pixels(splits.test[0].astype("float32"))
    seconds = time.monotonic() - start
    truth = [splits.class_names[i] for i in splits.test[1]]
    report = classification_report(truth, [p["label"] for p in predictions], splits.class_names)
    report.update(model=str(classifier.model_dir), examples=len(truth), seconds=round(seconds, 1))
    return report


class ImageClassifier(Predictor):
    """An exported image classifier: images in, labels and top-k out."""

    kind = KIND
    signature_names = ("serving_default", "predict_pixels")
    metadata_fields = {"class_names": strings, "image_shape": image_shape}

    def __init__(self, path):
        super().__init__(path)
        self.serve_pixels = self.signatures["predict_pixels"]
        self.class_names = self.metadata["class_names"]
        self.image_shape = tuple(self.metadata["image_shape"])

    def decode(self, data, name="image"):
        """The pixels the model reads, from encoded image bytes (decoded as its serving graph does)."""
        from toolkit.preprocessing.image import decode_pixels

        return decode_pixels(data, self.image_shape, name)

    def predict_pixels(self, pixels, batch_size=256):
        """`{"label", "probability", "top_k"}` per decoded image (`decode`), in the order given."""
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


PREDICTOR = ImageClassifier
