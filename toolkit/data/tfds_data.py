"""TensorFlow Datasets (`tensorflow-datasets`) as a source, named `tfds:NAME`: `tfds:cifar10`, `tfds:mnist`,
`tfds:rock_paper_scissors`, `tfds:imdb_reviews`, with a config or version as tfds spells them
(`tfds:glue/sst2`, `tfds:mnist:3.*.*`). Each is read into the structures the other sources give
(`toolkit.data.images.ImageSplits`, `toolkit.data.text_folders.TextSplits`), so training, resuming and
export never know where their data came from.

What is read: the builder's supervised keys (`info.supervised_keys`, read with `as_supervised=True`) name
the input and the label. The label must be a `ClassLabel`, whose `names` are the class names; the input an
`Image` of 1 or 3 channels for `toolkit train images`, text for `toolkit train sentiment`. Anything else
is refused with one line before a run starts.

Splits: validation is always carved from tfds' train split by the seeded, stratified hold-out every other
source uses (`toolkit.data.images.held_out`), so `--validation-split` and `--seed` mean the same whatever
the source, and tfds' own validation split never picks the checkpoint. The test split is tfds' "test", or,
for sets that publish no test labels (imagenet2012, imagenette), its "validation"; with neither, none.
`toolkit evaluate` scores an exported model on that same split (`scored_images`, `scored_texts`).

Where: tfds' own data_dir: `--data-dir` if given, else `$TFDS_DATA_DIR` (read by tfds itself), else
`~/tensorflow_datasets`. A set not prepared there is downloaded and prepared first; offline, prepare
it on a machine with a network (`tfds build NAME`) and bring its folder (`--data-dir`).

Images are read into memory as uint8 arrays, as CIFAR-10 is: a set must fit in memory at the image
size it is trained at. tfds' encoded bytes are decoded by `decode_image_uint8`, the serving graph's
own decoder and resize, not by tfds, so a model trains on the pixels it is served. Images of one size
keep it; sets of mixed sizes are resized to `image_size`, by default the first image's size.

Nothing here imports TensorFlow or tfds at import time: the command line checks `tfds:` names for `--help`.
"""

import contextlib
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError

PREFIX = "tfds:"
CHUNK = 1024  # images decoded per batch while reading a split into memory


def is_tfds(dataset):
    """Whether a `--dataset` value names a tfds set (`tfds:NAME`)."""
    return isinstance(dataset, str) and dataset.startswith(PREFIX)


def check_name(dataset):
    """Raises ValueError for a `tfds:` value that names nothing; whether the name exists is asked when it is read."""
    name = dataset[len(PREFIX):]
    if not name.strip() or name != name.strip():
        raise ValueError(f"dataset tfds:NAME needs a data set name, e.g. tfds:mnist. Received: dataset={dataset!r}")


# === The builder ===

def prepared(dataset, data_dir=None):
    """The tfds builder of `dataset` in `data_dir` (None: tfds' default), its data downloaded and prepared
    there if they are not yet; ToolkitError, one line, for an unknown name or a failed download."""
    import tensorflow_datasets as tfds

    name = dataset[len(PREFIX):]
    data_dir = str(Path(data_dir).expanduser()) if data_dir else None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ToolkitError(f"no tfds data set named {name!r}{_did_you_mean(name)}; tfds.list_builders() lists the "
                           "names, as does https://www.tensorflow.org/datasets/catalog") from None
    except (ValueError, AssertionError) as e:  # a config or version the data set does not have
        raise ToolkitError(f"cannot open {dataset}: {_reason(e)}{_configs(name)}") from None
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except ImportError as e:  # a module it takes to prepare: tensorflow/datasets#11212 for importlib_resources
            raise ToolkitError(f"cannot prepare {dataset}: {_reason(e)}{_pip_install(e)}") from None
        except Exception as e:  # network, checksum, manual-download failures: one line to the user  # noqa: BLE001
            raise ToolkitError(f"cannot download {dataset} (no network?): {type(e).__name__}: {_reason(e)}; prepare "
                               f"it elsewhere with tfds build {name} and pass --data-dir") from None
    return builder


def _pip_install(error):
    """A hint to install the module an ImportError names, spelled as most packages are (importlib_resources:
    importlib-resources); "" where it names none."""
    return f" (pip install {error.name.split('.')[0].replace('_', '-')})" if error.name else ""


def _did_you_mean(name):
    import difflib

    import tensorflow_datasets as tfds

    names = tfds.list_builders(with_community_datasets=False)
    close = difflib.get_close_matches(name.split(":")[0].split("/")[0], names, n=1)
    return f" (did you mean tfds:{close[0]}?)" if close else ""


def _configs(name):
    """The configs of the data set `name` names, as a sentence to append (`tfds:NAME/CONFIG` picks one); "" for
    a set without configs."""
    import tensorflow_datasets as tfds

    configs = list(tfds.builder_cls(name.split(":")[0].split("/")[0]).builder_configs)
    return f" Its configs: {', '.join(configs)}." if configs else ""


def _reason(error):
    """The first line of a tfds error, without the builder arguments it repeats nor a list it announces (and
    leaves off)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else "no reason given"
    text = re.sub(r'^Failed to construct dataset "[^"]*", builder_kwargs "[^"]*": ', "", text)
    text = re.sub(r"\s*Here are \d+ BuilderConfigs whose name closely match:\s*$", "", text)
    return text if len(text) < 200 else text[:197] + "..."


def supervised_keys(builder, dataset):
    """(input feature, label feature, class names) of a builder, checked: a pair of supervised keys whose
    label is a `ClassLabel` of at least two classes."""
    import tensorflow_datasets as tfds

    keys = builder.info.supervised_keys
    if not (isinstance(keys, (tuple, list)) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
        raise ToolkitError(f"{dataset} names no (input, label) pair (supervised_keys: {keys!r}): "
                           "the toolkit trains on those")
    features = builder.info.features
    if any(key not in features for key in keys):
        raise ToolkitError(f"{dataset}: the supervised keys {list(keys)} are not among its features {list(features)}")
    label = features[keys[1]]
    if not isinstance(label, tfds.features.ClassLabel):
        raise ToolkitError(f"{dataset}'s label {keys[1]!r} is {_described(label)}, not a ClassLabel: "
                           "the toolkit trains classifiers of named classes")
    if label.num_classes < 2:
        raise ToolkitError(f"{dataset} has {label.num_classes} class: a classifier needs at least two")
    return keys[0], keys[1], tuple(label.names)


def _described(feature):
    """A feature on one line: `Tensor(shape=(), dtype=float32)`."""
    text = " ".join(repr(feature).split())
    return text if len(text) < 80 else text[:77] + "..."


def scored_split(builder):
    """tfds' "test" split, else its "validation" (sets that publish no test labels), else None."""
    return next((split for split in ("test", "validation") if _has_split(builder, split)), None)


def _split_to_score(builder, dataset):
    """`scored_split`, where a set has one; ToolkitError, one line, where it has neither."""
    split = scored_split(builder)
    if split is None:
        raise ToolkitError(f"{dataset} has no test split to score, nor a validation split "
                           f"(its splits: {', '.join(builder.info.splits) or 'none'})")
    return split


def _check_classes(class_names, classes):
    """ToolkitError, one line, unless a model's `class_names` (None: not checked) are the set's `classes`: its
    labels, indices into `classes`, would otherwise be compared with the names of other classes."""
    if class_names is not None and tuple(class_names) != tuple(classes):
        raise ToolkitError(f"the model's classes {list(class_names)} are not the data's {list(classes)}")


def _has_split(builder, split):
    """Whether the prepared data hold `split`. A builder that records no splits (`tfds.testing.mock_data`
    fakes its data) is asked for it."""
    if builder.info.splits:
        return split in builder.info.splits
    try:
        builder.as_dataset(split=split)
    except ValueError:  # "Unknown split"
        return False
    return True


def _supervised(builder, dataset, split, **kwargs):
    """The (input, label) pairs of `split`, in tfds' fixed order (files not shuffled)."""
    if split == "train" and not _has_split(builder, "train"):
        raise ToolkitError(f"{dataset} has no train split (its splits: {', '.join(builder.info.splits) or 'none'})")
    return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False, **kwargs)


def fingerprint(dataset, data_dir=None):
    """`{"examples", "sha256"}` of a tfds set, like `toolkit.training.data_fingerprint`'s, from its full name
    (name/config/version) and split sizes: tfds never changes the data of a version, so these name them."""
    info = prepared(dataset, data_dir).info
    sizes = sorted((split, info.splits[split].num_examples) for split in info.splits)
    digest = hashlib.sha256(json.dumps([info.full_name, sizes]).encode("utf-8")).hexdigest()
    return {"examples": dict(sizes).get("train"), "sha256": digest}


# === Images ===

def image_splits(dataset, data_dir=None, image_size=None, validation_split=0.1, seed=1337):
    """A tfds image set as `toolkit.data.images.ImageSplits`, as `toolkit.data.images.load` gives the built-in
    sets: train split into train and validation by `toolkit.data.images.split`."""
    from toolkit.data import images

    train, test, classes = image_arrays(dataset, data_dir, image_size)
    train, validation = images.split(train, validation_split, seed)
    return images.ImageSplits(train, validation, test, classes)


def image_arrays(dataset, data_dir=None, image_size=None):
    """(train, test or None, class names) of a tfds image set, as `toolkit.data.images` reads every source:
    (uint8 images `[N, H, W, C]`, int32 labels) pairs, decoded into memory (see the module's notes).

    `image_size`: (height, width) to resize to; by default the images' own size, or, where they
    differ, the first training image's.
    """
    builder = prepared(dataset, data_dir)
    image, feature, classes = _image_input(builder, dataset)
    height, width, channels = feature.shape
    if channels not in (1, 3):
        raise ToolkitError(f"{dataset}'s images have {channels} channels: the toolkit trains on 1 (gray) or 3 (RGB)")
    size = tuple(image_size) if image_size else (height, width) if height and width else None
    print(f"Reading {dataset} into memory...", file=sys.stderr)
    train = _decoded(_encoded(builder, dataset, "train", image), size, channels, dataset)
    split = scored_split(builder)
    test = None
    if split is not None:
        test = _decoded(_encoded(builder, dataset, split, image), train[0].shape[1:3], channels, dataset)
    return train, test, classes


def scored_images(dataset, data_dir, image_shape, class_names=None):
    """(split, (uint8 images, int32 labels)) of the split a run on `dataset` is scored on (`scored_split`),
    decoded into memory as a model of `image_shape` (height, width, channels) is served: what
    `toolkit evaluate images --dataset tfds:NAME` scores.

    `class_names`: the model's, which must be the set's, in order; checked before an image is decoded.
    """
    builder = prepared(dataset, data_dir)
    image, _, classes = _image_input(builder, dataset)
    _check_classes(class_names, classes)
    split = _split_to_score(builder, dataset)
    height, width, channels = image_shape
    print(f"Reading {dataset}'s {split} split into memory...", file=sys.stderr)
    return split, _decoded(_encoded(builder, dataset, split, image), (height, width), channels, dataset)


def _image_input(builder, dataset):
    """(input key, its `Image` feature, class names) of an image set, checked: images of 8 or 16 bits."""
    import tensorflow_datasets as tfds

    image, _, classes = supervised_keys(builder, dataset)
    feature = builder.info.features[image]
    if not isinstance(feature, tfds.features.Image):
        hint = "; use toolkit train sentiment" if _is_text(feature) else ""
        raise ToolkitError(f"{dataset} is not an image data set: its input {image!r} is {_described(feature)}{hint}")
    dtype = np.dtype(feature.np_dtype)
    if dtype not in (np.uint8, np.uint16):
        raise ToolkitError(f"{dataset}'s images are {dtype}: the toolkit reads 8- or 16-bit images")
    return image, feature, classes


def _encoded(builder, dataset, split, image):
    """The (encoded image, label) pairs of `split`: the stored PNG/JPEG bytes, to be decoded as serving decodes them."""
    import tensorflow_datasets as tfds

    return _supervised(builder, dataset, split, decoders={image: tfds.decode.SkipDecoding()})


def _decoded(pairs, size, channels, dataset):
    """(uint8 images, int32 labels) of (encoded image, label) pairs, decoded by `decode_image_uint8` to `size`
    (None: the first image's) in batches of CHUNK."""
    from toolkit.preprocessing.image import decode_image_uint8
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    size = size or _first_size(pairs, dataset)

    def decode(data, label):
        return decode_image_uint8(data, size, channels), tf.cast(label, tf.int32)

    with _decoding_errors(dataset):
        parts = list(pairs.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(CHUNK).prefetch(2)
                     .as_numpy_iterator())
    if not parts:
        return np.zeros((0, *size, channels), np.uint8), np.zeros(0, np.int32)
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def _first_size(pairs, dataset):
    """(height, width) of the first image of (encoded image, label) pairs."""
    from toolkit.preprocessing.image import decode_native

    with _decoding_errors(dataset):
        for data, _ in pairs.take(1):
            return tuple(decode_native(data).shape[:2])
    raise ToolkitError(f"{dataset} has no training images")


@contextlib.contextmanager
def _decoding_errors(dataset):
    """TensorFlow's error for an image it cannot decode, as one line."""
    import tensorflow as tf

    from toolkit.preprocessing.image import readable_reason

    try:
        yield
    except tf.errors.OpError as e:
        raise ToolkitError(f"{dataset}: an image does not decode ({readable_reason(e.message)})") from None


# === Text ===

def _is_text(feature):
    """A string per example: tfds' `Text` (without a subword encoder), or a string `Tensor`."""
    import tensorflow as tf

    return getattr(feature, "shape", None) == () and getattr(feature, "tf_dtype", None) == tf.string


def text_splits(dataset, data_dir=None, validation_split=0.1, seed=1337):
    """A tfds text set as `toolkit.data.text_folders.TextSplits`: unbatched (text, int32 label) `tf.data`
    datasets, streamed from tfds' files, and the class names.

    Validation is held out of train by `held_out` (see the module's notes): one pass over the
    labels picks it, and train and validation then filter tfds' train split by position.
    """
    import tensorflow as tf

    from toolkit.data.images import held_out
    from toolkit.data.text_folders import TextSplits

    builder = prepared(dataset, data_dir)
    classes = _text_classes(builder, dataset)

    def pairs(split):
        return _supervised(builder, dataset, split).map(lambda t, label: (t, tf.cast(label, tf.int32)))

    train = pairs("train")
    labels = list(train.map(lambda t, label: label).batch(4096).as_numpy_iterator())
    mask = held_out(np.concatenate(labels) if labels else np.zeros(0, np.int32), validation_split, seed)
    held = tf.constant(mask)

    def part(in_validation, count):
        kept = train.enumerate().filter(lambda i, pair: tf.equal(held[i], in_validation))
        return kept.map(lambda i, pair: pair).apply(tf.data.experimental.assert_cardinality(count))

    split = scored_split(builder)
    return TextSplits(train=part(False, int((~mask).sum())), validation=part(True, int(mask.sum())),
                      test=pairs(split) if split is not None else None, class_names=classes)


def scored_texts(dataset, data_dir=None, class_names=None):
    """(split, (texts, int32 labels)) of the split a run on `dataset` is scored on (`scored_split`), read into
    memory as Python strings (bytes that are not UTF-8 replaced, as review files are read): what
    `toolkit evaluate sentiment --dataset tfds:NAME` scores.

    `class_names`: the model's, which must be the set's, in order; checked before a text is read.
    """
    builder = prepared(dataset, data_dir)
    _check_classes(class_names, _text_classes(builder, dataset))
    split = _split_to_score(builder, dataset)
    texts, labels = [], [np.zeros(0, np.int32)]
    for batch, batch_labels in _supervised(builder, dataset, split).batch(4096).as_numpy_iterator():
        texts += [text.decode("utf-8", errors="replace") for text in batch]
        labels.append(batch_labels.astype(np.int32))
    return split, (texts, np.concatenate(labels))


def _text_classes(builder, dataset):
    """The class names of a text set, checked: its input is a string per example."""
    import tensorflow_datasets as tfds

    text, _, classes = supervised_keys(builder, dataset)
    feature = builder.info.features[text]
    if not _is_text(feature):
        hint = "; use toolkit train images" if isinstance(feature, tfds.features.Image) else ""
        raise ToolkitError(f"{dataset} is not a text data set: its input {text!r} is {_described(feature)}{hint}")
    return classes
