"""Image classification end to end: arrays -> CNN/ResNet -> training -> SavedModel taking image bytes.

`train()` is what `toolkit train images` runs, on any Keras backend (a lent GPU trains
it under JAX; the weights load into the TensorFlow model for export). `export_run()` turns a
run folder into a serving model; `evaluate()` scores an exported model on a test split.
"""

import dataclasses
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.io import write_json

KIND = "image_classifier"
CIFAR_DEPTHS = (20, 32, 44, 56, 110)
ARCHITECTURES = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "plain20", "plain32", "plain44",
                 "plain56", "plain110", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "lenet5",
                 "alexnet", "vgg11", "vgg13", "vgg16", "vgg19")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides an image training run; stored as the run's config.json."""

    dataset: str = "cifar10"  # cifar10 | fashion_mnist | folder
    data_dir: str = None
    image_size: int = None  # folder data: resize to this square size (default: the first image's)
    arch: str = "resnet20"
    version: int = 1  # CIFAR ResNets: 1 (post-activation) or 2 (pre-activation)
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
    clip_norm: float = None
    patience: int = None
    validation_split: float = 0.1
    seed: int = 1337


def build_model(config, num_classes, input_shape, pixel_mean=None, pixel_variance=None):
    """The architecture named by `config.arch`, with pixel scaling inside."""
    from toolkit.models import cnn, resnet

    common = dict(num_classes=num_classes, input_shape=input_shape, pixel_mean=pixel_mean,
                  pixel_variance=pixel_variance)
    match = re.fullmatch(r"(resnet|plain)(\d+)", config.arch)
    if match and int(match.group(2)) in resnet.IMAGENET_DEPTHS and config.arch.startswith("resnet"):
        return resnet.build_resnet(int(match.group(2)), l2=config.l2, **common)
    if match:
        return resnet.build_cifar_resnet(int(match.group(2)), version=config.version, shortcut=config.shortcut,
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
    import keras

    from toolkit import training
    from toolkit.data.feeding import array_batches
    from toolkit.preprocessing.image import augmentation

    run_dir = Path(run_dir)
    settings = dataclasses.asdict(config)
    config_file = run_dir / "config.json"
    training.check_same_settings(run_dir, settings)
    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config)
    classes = len(splits.class_names)
    pixels = splits.train[0].reshape(-1, splits.image_shape[-1]) / 255.0
    mean, variance = pixels.mean(axis=0).tolist(), pixels.var(axis=0).tolist()
    write_json(config_file, {"kind": KIND, "class_names": list(splits.class_names), "image_shape": list(splits.image_shape),
                             "pixel_mean": mean, "pixel_variance": variance, "train": settings,
                             "backend": keras.backend.backend(), "command": sys.argv})

    def targets(labels):
        return np.eye(classes, dtype="float32")[labels]

    augment = augmentation(splits.image_shape, translate=config.translate, flip=config.flip, erase=config.erase,
                           seed=config.seed)
    train_batches = array_batches(splits.train[0], targets(splits.train[1]), config.batch_size, augment=augment,
                                  shuffle=True, seed=config.seed)
    validation_batches = array_batches(splits.validation[0], targets(splits.validation[1]), 256)

    model = build_model(config, classes, splits.image_shape, mean, variance)
    steps = math.ceil(len(splits.train[0]) / config.batch_size)
    optimizer = training.make_optimizer(config.optimizer, config.learning_rate, config.clip_norm,
                                        momentum=config.momentum, nesterov=config.nesterov,
                                        schedule=config.schedule, total_steps=config.epochs * steps,
                                        warmup_steps=min(config.warmup_epochs, config.epochs / 2) * steps)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    print(f"{model.name}: {model.count_params():,} parameters; {len(splits.train[0])} train, "
          f"{len(splits.validation[0])} validation images {splits.image_shape}", file=sys.stderr)

    model, history = training.fit(model, train_batches, validation_batches, run_dir, epochs=config.epochs,
                                  patience=config.patience)
    results = {"arch": config.arch, "class_names": list(splits.class_names), "parameters": model.count_params(),
               "epochs_trained": len(history), "best_epoch": training.best_epoch(history),
               "train_seconds": training.training_seconds(history), "backend": keras.backend.backend()}
    if splits.test is not None:
        results.update(score_arrays(model, splits.test[0], splits.test[1]))
    write_json(run_dir / "metrics.json", results)
    return results


def score_arrays(model, images, labels, batch_size=500):
    """Test accuracy of a Keras model, plain and with test-time horizontal flips averaged in."""
    start = time.monotonic()
    plain = model.predict(images.astype("float32"), batch_size=batch_size, verbose=0)
    flipped = model.predict(images[:, :, ::-1].astype("float32"), batch_size=batch_size, verbose=0)
    return {"test": {"accuracy": float(np.mean(plain.argmax(1) == labels)),
                     "accuracy_flip_averaged": float(np.mean((plain + flipped).argmax(1) == labels))},
            "test_examples": int(len(labels)), "test_seconds": round(time.monotonic() - start, 1)}


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
    archive = export.image_classifier_archive(model, config["class_names"], top_k=top_k, flip_average=flip_average)
    metadata = {"kind": KIND, "class_names": config["class_names"], "image_shape": config["image_shape"],
                "flip_average": bool(flip_average), "train": config["train"], "parameters": model.count_params()}
    if metrics:
        metadata["metrics"] = metrics
    return export.write_saved_model(archive, to, name, version, metadata)


def evaluate(model_path, dataset="cifar10", data_dir=None):
    """Accuracy of an exported image classifier on the test split (through its pixels signature)."""
    from toolkit.data import images
    from toolkit.metrics import classification_report
    from toolkit.predictor import ImageClassifier

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
