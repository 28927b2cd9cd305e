"""Image classification data: uint8 arrays `[N, H, W, C]` with integer labels (`load`), or, for a
folder of class folders, the list of its image files, streamed by `tf.data` (`load_files`).

Sources:
  - a folder of class sub-folders (JPEG/PNG/GIF/BMP): `ROOT/{train,test}/<class>/*` or `ROOT/<class>/*`;
  - CIFAR-10: the JPEG copy (`cifar10-jpeg.tar.gz`, class folders), the official python
    batches (`cifar-10-python.tar.gz`), or, with no local copy, the official batches downloaded;
  - Fashion-MNIST: the four upstream IDX files, local or downloaded.

Image files are decoded by `toolkit.preprocessing.image.decode_image`, the very op the
exported serving graph runs on image bytes, so a model trains on the pixels it is served
(on a machine without TensorFlow, by its Pillow imitation). Decoded arrays are cached,
keyed by the decoder's version.

A folder of class folders is not held in memory where TensorFlow is installed: `load_files`
decodes every file once (`scan_class_folders`, CHUNK at a time) to learn which decode, their
shape and their pixel sums, and keeps only that; `file_decoder` reads and decodes them again,
batch by batch, inside the training pipeline (`toolkit.data.pipelines.decoded_batches`).
The train split is divided into train and validation by a fixed seed; test stays untouched.
"""

import dataclasses
import gzip
import hashlib
import importlib.util
import itertools
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np

from toolkit.data import archives, locate
from toolkit.errors import ToolkitError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
CHUNK = 1024  # image files read, then decoded, at a time: memory holds the bytes of CHUNK files
DEFAULT_SEED = 1337

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
FASHION_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}


@dataclasses.dataclass(frozen=True)
class ImageSplits:
    """(images, labels) pairs: uint8 `[N, H, W, C]` and int32 `[N]`; `test` may be None."""

    train: tuple
    validation: tuple
    test: tuple
    class_names: tuple

    @property
    def image_shape(self):
        return tuple(self.train[0].shape[1:])


def load(dataset, data_dir=None, image_size=None, validation_split=0.1, seed=DEFAULT_SEED):
    """`dataset` is "cifar10", "fashion_mnist" or "folder" (class folders in `data_dir`)."""
    if dataset == "cifar10":
        train, test, classes = _cifar10(data_dir)
    elif dataset == "fashion_mnist":
        train, test, classes = _fashion_mnist(data_dir)
    elif dataset == "folder":
        if not data_dir:
            raise ToolkitError("--data-dir is required for a folder of class folders")
        train, test, classes = _folder(Path(data_dir), image_size)
    else:
        raise ValueError(f"dataset must be 'cifar10', 'fashion_mnist' or 'folder'. Received: dataset={dataset!r}")
    train, validation = split(train, validation_split, seed)
    return ImageSplits(train, validation, test, tuple(classes))


def guess_dataset(data_dir):
    """The `dataset` a local copy holds: IDX files are Fashion-MNIST, class folders a folder data set;
    anything else (a tarball, no copy at all) is CIFAR-10."""
    path = Path(data_dir) if data_dir else None
    if path is None or not path.is_dir():
        return "cifar10"
    if any(path.glob("*-idx3-ubyte*")):
        return "fashion_mnist"
    root = path / "train" if (path / "train").is_dir() else path
    if not any(path.glob("*.tar.gz")) and any(p.is_dir() for p in root.iterdir()):
        return "folder"
    return "cifar10"


def split(pair, fraction, seed):
    """A seeded, stratified hold-out: the same files land in validation every time."""
    images, labels = pair
    mask = held_out(labels, fraction, seed)
    return (images[~mask], labels[~mask]), (images[mask], labels[mask])


def held_out(labels, fraction, seed):
    """The validation mask of `split`: `fraction` of each class (at least one), drawn by `seed`."""
    if not 0.0 < fraction < 1.0:
        raise ToolkitError(f"validation_split must be between 0 and 1. Received: {fraction!r}")
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        held.extend(members[: max(1, int(round(len(members) * fraction)))])
    mask = np.zeros(len(labels), bool)
    mask[held] = True
    return mask


# === Folders of class folders ===

def class_folders(folder):
    """The class sub-folders of `folder`, validated: at least two, none without images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ToolkitError(f"no such folder: {folder}")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ToolkitError(f"{folder} has no class folders: expected {folder}/<class>/*.jpg")
    if len(classes) < 2:
        raise ToolkitError(f"{folder} has one class only ({classes[0]!r}): a classifier needs at least two")
    for name in classes:
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in (folder / name).iterdir()):
            raise ToolkitError(f"class folder {folder / name} has no images ({', '.join(IMAGE_SUFFIXES)})")
    return classes


def _folder(root, image_size=None):
    if (root / "train").is_dir():
        classes = class_folders(root / "train")
        train = read_class_folders(root / "train", classes, image_size)
        test = None
        if (root / "test").is_dir():
            test = read_class_folders(root / "test", classes, image_size or train[0].shape[1:3])
        return train, test, classes
    classes = class_folders(root)
    return read_class_folders(root, classes, image_size), None, classes


def read_class_folders(folder, classes, image_size=None):
    """Decodes every image under `folder/<class>/`; unreadable files are skipped with one warning line.

    Without `image_size`, images take the first one's size; its channels (1 for gray, else 3)
    are everyone's. Files are decoded by `decode_image`, the serving graph's own decoder
    (`_decode_with_tensorflow`); Pillow stands in only where TensorFlow is not installed.
    """
    paths, labels = _class_files(folder, classes)
    decode = _decode_with_tensorflow if _has_tensorflow() else _decode_with_pillow
    images, kept, skipped = decode(paths, image_size)
    _warn_skipped(skipped)
    if not kept:
        raise ToolkitError(f"no readable images in {folder}")
    return images, np.asarray(labels, np.int32)[kept]


def _class_files(folder, classes):
    """(paths, labels) of the image files under `folder/<class>/`, class by class, each sorted by name.
    A class without a folder here (a test split may lack one) has no files."""
    paths, labels = [], []
    for label, name in enumerate(classes):
        if not (Path(folder) / name).is_dir():
            continue
        for path in sorted((Path(folder) / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(label)
    return paths, labels


def _warn_skipped(skipped):
    """One warning line on stderr for the files `{index: reason}` that were left out."""
    if skipped:
        print(_skipped_line(skipped), file=sys.stderr)


def _skipped_line(skipped):
    return f"Warning: skipped {len(skipped)} unreadable images, e.g. {skipped[min(skipped)]}"


def decoder():
    """Which decoder reads image files here, and its version: part of the cache key of decoded arrays."""
    from toolkit.preprocessing.image import DECODER_VERSION

    return f"{'graph' if _has_tensorflow() else 'pillow'}{DECODER_VERSION}"


def _has_tensorflow():
    return importlib.util.find_spec("tensorflow") is not None


def _encoded(path):
    """The bytes of an image file as `decode_image` should see them (`checked_bytes`); ToolkitError if unusable."""
    return _read_checked(path)[1]


def _read_checked(path):
    """(the bytes of an image file, those bytes as `decode_image` should see them); ToolkitError if unusable."""
    from toolkit.preprocessing.image import MAX_IMAGE_BYTES, checked_bytes
    from toolkit.user_files import read_bytes

    raw = read_bytes(path, MAX_IMAGE_BYTES)
    return raw, checked_bytes(raw, path)


def _decode_with_tensorflow(paths, image_size):
    """(uint8 images, indices of the paths decoded, {index: reason} of those skipped), in order (`_decoded_chunks`)."""
    skipped = {}
    parts = list(_decoded_chunks(paths, image_size, skipped))
    kept = [index for _, indices in parts for index in indices]
    images = np.concatenate([pixels for pixels, _ in parts]) if parts else None
    return images, kept, _reasons(skipped, paths)


def _decoded_chunks(paths, image_size, skipped, channels=None, on_read=None):
    """(uint8 images, the indices in `paths` they came from), CHUNK files at a time, in order; each file left
    out goes into `skipped` as {index: reason, or None where TensorFlow gave none (`_reasons` finds it)}.

    Files are read and checked in Python (`_read_checked`), CHUNK at a time; each chunk is then
    decoded by `decode_image_uint8` in one call, as `serving_default` decodes a batch: a
    `tf.map_fn` (parallel, order-preserving) in a `tf.function`. On 2 cores this costs about
    45 us of CPU a CIFAR-10 JPEG; a `tf.data` map over the same function took 85-140 us, and
    one over single files 115 us, besides Python's 70 us to read and check a file.
    What libjpeg says meanwhile is kept off stderr; if it found truncated or corrupt data in a
    chunk, its JPEGs are decoded again one by one, as `toolkit classify` does, and those it
    refuses are skipped too. The first decodable file sets the size (unless `image_size`) and
    the channels (1 for gray, else 3; unless `channels`). `on_read(index, raw, checked)` sees the
    bytes of each file that passes the checks.
    """
    from toolkit.preprocessing.image import LIBJPEG_CORRUPT
    from toolkit.runtime import captured_stderr, import_tensorflow

    tf = import_tensorflow()

    def encoded():
        for index, path in enumerate(paths):
            try:
                raw, data = _read_checked(path)
            except ToolkitError as e:
                skipped[index] = str(e)
                continue
            if on_read is not None:
                on_read(index, raw, data)
            yield data, index

    items = encoded()
    with captured_stderr():
        first = _first_decodable(items, skipped, tf)
    if first is None:
        return
    data, index, (height, width, native) = first  # it sets the size and the channels
    shape = (*(image_size or (height, width)), channels or (1 if native <= 2 else 3))
    decode = _batch_decoder(shape, tf)
    items = itertools.chain([(data, index)], items)
    while True:
        with captured_stderr() as stderr:
            chunk = list(itertools.islice(items, CHUNK))
            parts = _decode_batch(chunk, decode, tf)
        if not chunk:
            return
        kept = [index for _, indices in parts for index in indices]
        skipped.update((index, None) for index in {index for _, index in chunk} - set(kept))
        if not kept:
            continue
        images = np.concatenate([pixels for pixels, _ in parts])
        if LIBJPEG_CORRUPT.search(stderr.text):
            good = _without_corrupt_jpegs(paths, kept, shape, skipped)
            images, kept = images[good], [kept[i] for i in good]
        if kept:
            yield images, kept


def _first_decodable(items, skipped, tf):
    """(bytes, index, native shape) of the first of `items` that TensorFlow decodes, or None."""
    from toolkit.preprocessing.image import decode_native

    for data, index in items:
        try:
            return data, index, tuple(decode_native(tf.constant(data)).shape)
        except tf.errors.OpError:
            skipped[index] = None
    return None


def _batch_decoder(shape, tf):
    """Encoded images `[n]` -> uint8 `[n, *shape]` by `decode_image_uint8`, as `serving_default` decodes a batch."""
    from toolkit.preprocessing.image import decode_image_uint8

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)])
    def decode(images):
        return tf.map_fn(lambda image: decode_image_uint8(image, shape[:2], shape[2]), images,
                         fn_output_signature=tf.TensorSpec(shape, tf.uint8))

    return decode


def _decode_batch(batch, decode, tf):
    """[(uint8 pixels, their indices)] of (bytes, index) pairs, in order; a file that does not decode is left out.

    One bad file fails the whole call: the batch is then split in two and each half decoded again.
    """
    if not batch:
        return []
    try:
        return [(decode(tf.constant([data for data, _ in batch])).numpy(), [index for _, index in batch])]
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        if len(batch) == 1:
            return []
        half = len(batch) // 2
        return _decode_batch(batch[:half], decode, tf) + _decode_batch(batch[half:], decode, tf)


def _without_corrupt_jpegs(paths, kept, image_shape, skipped):
    """Positions in `kept` of the files `decode_pixels` accepts; the JPEGs it refuses go to `skipped`."""
    from toolkit.preprocessing.image import decode_pixels

    good = []
    for position, index in enumerate(kept):
        if paths[index].suffix.lower() in (".jpg", ".jpeg"):
            try:
                decode_pixels(_encoded(paths[index]), image_shape, paths[index])
            except ToolkitError as e:
                skipped[index] = str(e)
                continue
        good.append(position)
    return good


def _reasons(skipped, paths):
    """{index: reason}, the reason for a file TensorFlow could not decode found out again (for the first only)."""
    from toolkit.preprocessing.image import decode_pixels

    if skipped and skipped[min(skipped)] is None:
        index = min(skipped)
        try:
            decode_pixels(_encoded(paths[index]), (1, 1, 3), paths[index])
            skipped[index] = f"{paths[index]}: not a readable image"
        except ToolkitError as e:
            skipped[index] = str(e)
    return skipped


def _decode_with_pillow(paths, image_size):
    """What `_decode_with_tensorflow` returns, decoded by `decode_image_with_pillow` (no TensorFlow here)."""
    from PIL import Image

    from toolkit.preprocessing.image import decode_image_with_pillow

    images, kept, skipped = [], [], {}
    size, channels = image_size and tuple(image_size), None
    for index, path in enumerate(paths):
        try:
            pixels = decode_image_with_pillow(_encoded(path), size, channels)
        except ToolkitError as e:
            skipped[index] = str(e)
            continue
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            skipped[index] = f"{path}: not a readable image ({e})"
            continue
        size, channels = pixels.shape[:2], pixels.shape[2]  # the first readable image sets them
        images.append(pixels)
        kept.append(index)
    return (np.stack(images) if images else None), kept, skipped


# === Folders of class folders, streamed ===

@dataclasses.dataclass(frozen=True)
class ImageFiles:
    """Image files that decode (`scan_class_folders`) and what a pipeline needs of each, one row per file; no pixels.

    `sizes` and `mtimes` are each file's as scanned; `cuts`, where an animated GIF's bytes are cut to
    its first frame (`first_gif_frame`; 0: read whole); `sums` and `squares` `[N, channels]`, each
    image's pixel values (uint8, as decoded to `image_shape`) and their squares summed per channel.
    """

    folder: str
    paths: tuple
    labels: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray
    cuts: np.ndarray
    sums: np.ndarray
    squares: np.ndarray
    image_shape: tuple

    def __len__(self):
        return len(self.paths)

    def take(self, rows):
        """The files at `rows` (indices or a boolean mask), in that order."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, np.int64)
        columns = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        columns.update({name: columns[name][rows] for name in ("labels", "sizes", "mtimes", "cuts", "sums", "squares")},
                       paths=tuple(self.paths[i] for i in rows))
        return ImageFiles(**columns)

    def names(self, class_names):
        """"class/file:size" of each file: what a resumed run must find again (`data_fingerprint`)."""
        return [f"{class_names[label]}/{Path(path).name}:{size}"
                for path, label, size in zip(self.paths, self.labels, self.sizes)]

    def key(self, *extra):
        """12 hex digits that change with any file (path, size, modification time), its order, the decoder
        (`decoder()`) or `extra`: the name of a cache of these files' pixels."""
        digest = hashlib.sha256(f"{decoder()}|{self.image_shape}|{extra}".encode())
        for path, size, mtime, cut in zip(self.paths, self.sizes, self.mtimes, self.cuts):
            digest.update(f"\n{path}|{size}|{mtime}|{cut}".encode())
        return digest.hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class FileSplits:
    """`ImageFiles` of train, validation and test (None without a test folder), the classes, and the shape
    `[H, W, C]` every image decodes to."""

    train: ImageFiles
    validation: ImageFiles
    test: ImageFiles
    class_names: tuple
    image_shape: tuple

    def pixel_moments(self):
        """(mean, variance) per channel of the training pixels scaled to [0, 1], as lists: exact, from every
        training image's sums (`scan_class_folders` decoded each one), not from a sample."""
        height, width, _ = self.image_shape
        count = len(self.train) * height * width
        sums = [int(v) for v in self.train.sums.sum(axis=0, dtype=object)]
        squares = [int(v) for v in self.train.squares.sum(axis=0, dtype=object)]
        mean = [s / (count * 255) for s in sums]
        variance = [q / (count * 255 ** 2) - m * m for q, m in zip(squares, mean)]
        return mean, variance


def streams(dataset):
    """Whether `dataset` is read as files streamed by `tf.data` (`load_files`) rather than as arrays (`load`):
    a folder of class folders, trained by Keras' TensorFlow backend. Without TensorFlow (Pillow's fallback)
    or under JAX or PyTorch (whose augmentation layers cannot run inside a `tf.data` graph) it is decoded
    into memory, as the built-in sets are."""
    import os

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules:
        backend = sys.modules["keras"].backend.backend()
    return dataset == "folder" and _has_tensorflow() and backend == "tensorflow"


def load_files(data_dir, image_size=None, validation_split=0.1, seed=DEFAULT_SEED, cache_dir=None):
    """The files of `ROOT/{train,test}/<class>/*` or `ROOT/<class>/*`, scanned (`scan_class_folders`), not decoded
    into memory; train is split into train and validation as `load` splits arrays (`held_out`: the same
    files land in validation). `cache_dir` keeps the scans there."""
    if not data_dir:
        raise ToolkitError("--data-dir is required for a folder of class folders")
    root = Path(data_dir)
    folder = root / "train" if (root / "train").is_dir() else root
    classes = class_folders(folder)
    files = scan_class_folders(folder, classes, image_size, cache_dir=cache_dir)
    test = None
    if folder != root and (root / "test").is_dir():
        test = scan_class_folders(root / "test", classes, files.image_shape, cache_dir=cache_dir)
    mask = held_out(files.labels, validation_split, seed)
    return FileSplits(files.take(~mask), files.take(mask), test, tuple(classes), files.image_shape)


def scan_class_folders(folder, classes, image_shape=None, cache_dir=None):
    """`ImageFiles` of the image files under `folder/<class>/` that decode, in one pass holding CHUNK images at a time.

    Every file is read, checked and decoded exactly as `read_class_folders` does it
    (`_decoded_chunks`), so the same files are kept and the same warning line names those
    skipped; of each image only its sizes and pixel sums are kept. `image_shape`: (height,
    width) to resize to, or (height, width, channels); by default the first image's.
    With `cache_dir`, the scan is kept there (`scan-KEY.npz`, keyed by the folder, every
    file's name, size and modification time, the shape asked for and the decoder), so a
    resumed run does not decode the data set once more before its first epoch.
    """
    from toolkit.atomic import atomic_path

    paths, labels = _class_files(folder, classes)
    stats = [os.stat(path) for path in paths]
    sizes = np.asarray([st.st_size for st in stats], np.int64)
    mtimes = np.asarray([st.st_mtime_ns for st in stats], np.int64)
    cache = None
    if cache_dir is not None:
        digest = hashlib.sha256(f"{Path(folder).resolve()}|{list(classes)}|{image_shape}|{decoder()}".encode())
        for path, size, mtime in zip(paths, sizes, mtimes):
            digest.update(f"\n{path.name}|{size}|{mtime}".encode())
        cache = Path(cache_dir) / f"scan-{digest.hexdigest()[:12]}.npz"
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as f:
            found = {name: f[name] for name in f.files}
        if str(found["warning"]):
            print(str(found["warning"]), file=sys.stderr)
    else:
        found = _scan(paths, sizes, image_shape)
        if cache is not None:
            with atomic_path(cache, suffix=".npz") as tmp:
                np.savez(tmp, **found)
    kept = found["kept"]
    if not len(kept):
        raise ToolkitError(f"no readable images in {folder}")
    return ImageFiles(str(folder), tuple(str(paths[i]) for i in kept), np.asarray(labels, np.int32)[kept],
                      found["sizes"], mtimes[kept], found["cuts"], found["sums"], found["squares"],
                      tuple(int(n) for n in found["shape"]))


def _scan(paths, sizes, image_shape):
    """What `scan_class_folders` keeps of `paths`, as arrays: kept indices, and their sizes, cuts, sums and squares."""
    sizes = sizes.copy()
    cuts = np.zeros(len(paths), np.int64)
    sums = squares = None
    kept, shape, skipped = [], (), {}

    def on_read(index, raw, checked):
        sizes[index] = len(raw)  # what the pipeline will read, should the file have changed since its stat
        cuts[index] = len(checked) - 1 if checked is not raw else 0  # checked = raw[:cut] + trailer

    size = tuple(image_shape[:2]) if image_shape else None
    channels = image_shape[2] if image_shape and len(image_shape) > 2 else None
    for images, indices in _decoded_chunks(paths, size, skipped, channels=channels, on_read=on_read):
        if sums is None:
            shape = images.shape[1:]
            sums, squares = (np.zeros((len(paths), shape[-1]), np.int64) for _ in range(2))
        step = max(1, 2 ** 22 // int(np.prod(shape)))  # int64 copies of at most 32 MB
        for start in range(0, len(images), step):
            block = images[start:start + step].astype(np.int64)
            rows = indices[start:start + step]
            sums[rows] = block.sum(axis=(1, 2))
            squares[rows] = np.square(block).sum(axis=(1, 2))
        kept.extend(indices)
    skipped = _reasons(skipped, paths)
    _warn_skipped(skipped)
    kept = np.asarray(kept, np.int64)
    empty = np.zeros((0, 1), np.int64)
    return {"kept": kept, "sizes": sizes[kept], "cuts": cuts[kept],
            "sums": sums[kept] if sums is not None else empty, "squares": squares[kept] if sums is not None else empty,
            "shape": np.asarray(shape, np.int64), "warning": np.asarray(_skipped_line(skipped) if skipped else "")}


def file_decoder(image_shape):
    """A function of a batch of scanned files' `(paths, sizes, cuts)` -> uint8 `[n, *image_shape]`, for `tf.data`.

    Each file is read in the graph (`tf.io.read_file`), cut to its first GIF frame where the
    scan cut it, and the batch decoded by `_batch_decoder`, `decode_image_uint8` in a
    `tf.map_fn` as `serving_default` decodes a batch: the pixels `read_class_folders` gives.
    The scan's checks (`checked_bytes`) are not made again; a file whose size is no longer
    the scanned one fails instead, and so does one that no longer decodes: either fails its
    whole batch, which the pipeline then drops (`decoded_batches`).
    """
    from toolkit.runtime import import_tensorflow

    tf = import_tensorflow()
    decode = _batch_decoder(tuple(image_shape), tf)

    def read(path, size, cut):
        """The file's bytes; an animated GIF's up to `cut`, with the trailer `first_gif_frame` puts there."""
        data = tf.io.read_file(path)
        same = tf.debugging.assert_equal(tf.cast(tf.strings.length(data), tf.int64), size,
                                         message="the file changed since it was scanned")
        with tf.control_dependencies([same]):
            data = tf.identity(data)
        first_frame = tf.strings.join([tf.strings.substr(data, 0, tf.cast(cut, tf.int32)), "\x3b"])
        return tf.where(cut > 0, first_frame, data)

    def decode_files(paths, sizes, cuts):
        return decode(tf.map_fn(lambda row: read(*row), (paths, sizes, cuts), fn_output_signature=tf.string))

    return decode_files


# === CIFAR-10 ===

def _cifar10(data_dir):
    local = locate.local_copy("cifar10", data_dir)
    if local is None:
        tarball = archives.download(CIFAR10_URL, locate.cache_dir() / "downloads" / "cifar-10-python.tar.gz",
                                    sha256=CIFAR10_SHA256)
        return _cifar10_batches(_extract(tarball) / "cifar-10-batches-py")
    if not local.exists():
        raise ToolkitError(f"no such file or folder: {local}")
    candidates = [local] if local.is_file() else sorted(local.glob("*.tar.gz")) + [local]
    for candidate in candidates:
        folder = _extract(candidate) if candidate.is_file() else candidate
        for root in (folder, folder / "cifar10", folder / "cifar-10-batches-py"):
            if (root / "data_batch_1").is_file():
                return _cifar10_batches(root)
            if (root / "train").is_dir() and (root / "test").is_dir():
                return _cached_arrays(candidate, lambda root=root: _folder(root))
    raise ToolkitError(f"no CIFAR-10 data in {local}: expected cifar10-jpeg.tar.gz, cifar-10-python.tar.gz "
                       "or train/ and test/ class folders")


def _cifar10_batches(root):
    """The official python batches: pickled dicts of 3072-byte rows (R, G, B planes)."""
    def read(name):
        path = root / name
        try:
            with open(path, "rb") as f:
                batch = _BatchUnpickler(f, encoding="bytes").load()
            images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = np.asarray(batch[b"labels"], np.int32)
        except pickle.UnpicklingError as e:
            raise ToolkitError(f"{path}: not a CIFAR-10 python batch ({e})") from None
        except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as e:
            raise ToolkitError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
        if labels.shape != (len(images),):
            raise ToolkitError(f"{path}: not a CIFAR-10 python batch ({len(images)} images, {labels.size} labels)")
        return images, labels

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, read("test_batch"), CIFAR10_CLASSES


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles what CIFAR-10's python batches hold (dicts, lists, bytes, numbers, NumPy arrays), nothing else.

    A pickle names the functions it calls to rebuild its objects, and `pickle.load` calls
    any of them, `os.system` included: a crafted batch in a `--data-dir` would run commands.
    Here only NumPy's array rebuilders may be named (`_reconstruct` under its NumPy 1 and 2
    module names, `ndarray`, `dtype`); anything else is refused before it is called.
    """

    ALLOWED = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                         ("numpy", "ndarray"), ("numpy", "dtype")})

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it would call {module}.{name}, which a data batch has no use for")
        return {"_reconstruct": np.ndarray.__reduce__(np.zeros(0))[0], "ndarray": np.ndarray, "dtype": np.dtype}[name]


# === Fashion-MNIST ===

def _fashion_mnist(data_dir):
    local = locate.local_copy("fashion-mnist", data_dir)
    if local is None:
        folder = locate.cache_dir() / "downloads" / "fashion-mnist"
        for name, sha256 in FASHION_MNIST_FILES.items():
            archives.download(FASHION_MNIST_URL + name, folder / name, sha256=sha256)
        local = folder
    missing = [name for name in FASHION_MNIST_FILES if not (local / name).is_file()]
    if missing:
        raise ToolkitError(f"no Fashion-MNIST data in {local}: missing {', '.join(missing)}")
    train = (read_idx(local / "train-images-idx3-ubyte.gz")[..., None], read_idx(local / "train-labels-idx1-ubyte.gz"))
    test = (read_idx(local / "t10k-images-idx3-ubyte.gz")[..., None], read_idx(local / "t10k-labels-idx1-ubyte.gz"))
    return (train[0], train[1].astype(np.int32)), (test[0], test[1].astype(np.int32)), FASHION_MNIST_CLASSES


def read_idx(path):
    """An IDX file (gzipped or not): magic 0x0000 08 NDIM, big-endian dimension sizes, then uint8 data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        shape = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
        array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
        return array.reshape(shape)
    except (OSError, ValueError, struct.error, EOFError) as e:
        raise ToolkitError(f"cannot read IDX file {path}: {e}") from None


# === Caches ===

def _key(path):
    stat = Path(path).stat()
    return hashlib.sha256(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]


def _extract(tarball):
    return archives.extract_tarball(tarball, locate.cache_dir() / "extracted" / f"{tarball.name}-{_key(tarball)}")


def _cached_arrays(source, read):
    """Decoding 60,000 JPEGs takes a while: keep the arrays in the cache, keyed by the source and by
    the decoder and its version (`decoder()`), so arrays another decoder made are never reused."""
    from toolkit.atomic import atomic_path

    cache = locate.cache_dir() / "arrays" / f"{Path(source).name}-{_key(source)}-{decoder()}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as f:
            test = (f["x_test"], f["y_test"]) if "x_test" in f else None
            return (f["x_train"], f["y_train"]), test, tuple(str(c) for c in f["classes"])
    train, test, classes = read()
    arrays = {"x_train": train[0], "y_train": train[1], "classes": np.asarray(classes)}
    if test is not None:
        arrays.update(x_test=test[0], y_test=test[1])
    with atomic_path(cache, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return train, test, classes
