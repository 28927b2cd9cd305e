"""Batches for `fit()`: in-memory arrays (augmented on the fly, on any Keras backend), examples
decoded from files as they are needed (`tf.data`), and variable-length sequences bucketed by
length (`tf.data`).

Under TensorFlow, arrays travel through a `tf.data` pipeline (shuffle, batch, augment in
parallel, prefetch). Under JAX or PyTorch, where `tf.data` may not exist, they go through a
`PyDataset` that runs the same augmentation layers on each batch.
"""

import contextlib
import math
from pathlib import Path

import keras
import numpy as np

DEFAULT_BOUNDARIES = (16, 32, 64, 96, 128, 160, 192, 256, 320, 400, 512, 640)
SHUFFLE_BYTES = 256 * 2 ** 20  # decoded examples a shuffle buffer behind a cache holds at most


def array_batches(images, targets, batch_size, *, augment=None, shuffle=False, seed=None):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices((images, targets))
        if shuffle:
            dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
        if augment is not None:
            dataset = dataset.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)
    return ArrayBatches(images, targets, batch_size, augment=augment, shuffle=shuffle, seed=seed)


def decoded_batches(columns, labels, decode, batch_size, *, target=None, augment=None, shuffle=False, seed=None,
                    cache=None):
    """Batches of (float32 inputs, targets) decoded from `columns` as the pipeline reaches them (`tf.data`).

    `columns` is a tuple of equal-length arrays, one row per example (say a file's path and
    size), `labels` an array of as many; `decode(*columns of a batch)` returns its uint8 inputs
    (`toolkit.data.images.file_decoder`), run on batches in parallel; `target(labels)` the
    batch's targets (default: the labels). Memory holds the rows, not the inputs: a few
    batches in flight, and what `cache` keeps:

    - `cache=None`: rows shuffled (all of them: a row is a name, not pixels) anew each epoch
      by `seed`, then batched, decoded, augmented and prefetched; every epoch decodes again.
    - `cache="memory"`, or a file prefix (`Dataset.cache(prefix)`: `prefix.index` and
      `prefix.data-*` once the first epoch has read everything; see `disk_cache`): rows
      shuffled once by `seed`, decoded and cached as uint8 in that order; each epoch then
      reshuffles the cached examples within a buffer of SHUFFLE_BYTES.

    A batch whose decoding fails (a file changed since it was checked) is dropped
    (`ignore_errors`): its epoch is one batch short, so the number of batches is unknown to
    `fit()` until the first epoch has ended (`fit()` then reads each epoch to its end, which
    a cache needs to be written).
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    rows = tf.data.Dataset.from_tensor_slices((tuple(columns), labels))
    if shuffle:
        rows = rows.shuffle(len(labels), seed=seed, reshuffle_each_iteration=cache is None)
    dataset = rows.batch(batch_size).map(lambda x, y: (decode(*x), y), num_parallel_calls=autotune).ignore_errors()
    if cache is not None:
        dataset = dataset.cache("" if cache == "memory" else str(cache))
        if shuffle:
            spec = dataset.element_spec[0]
            example_bytes = max(1, math.prod(spec.shape[1:]) * spec.dtype.size)
            buffer = int(min(len(labels), max(batch_size, SHUFFLE_BYTES // example_bytes)))
            dataset = dataset.unbatch().shuffle(buffer, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    target = target or (lambda y: y)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), target(y)), num_parallel_calls=autotune)
    if augment is not None:
        dataset = dataset.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=autotune)
    return dataset.prefetch(autotune)


@contextlib.contextmanager
def disk_cache(prefixes, busy_message):
    """Holds the folder of the `Dataset.cache` files `prefixes` for the block while any of them is unwritten.

    A cache is complete once `PREFIX.index` exists; one a killed run left half written holds
    TensorFlow's `PREFIX_0.lockfile` (every later run would refuse to write it: "a concurrent
    caching iterator") and temporary data, which are deleted here. The lock (`folder_lock`)
    makes sure no other live process is writing them: a second run that would write into the
    folder meanwhile stops with ToolkitError(busy_message). Complete caches are only read, and
    take no lock.
    """
    from toolkit.atomic import folder_lock

    prefixes = [Path(prefix) for prefix in prefixes]
    unwritten = [prefix for prefix in prefixes if not Path(f"{prefix}.index").is_file()]
    if not unwritten:
        yield
        return
    with folder_lock(unwritten[0].parent, busy_message):
        for prefix in unwritten:
            for leftover in prefix.parent.iterdir():
                if leftover.name.startswith((f"{prefix.name}_", f"{prefix.name}.")) and leftover.is_file():
                    leftover.unlink()
        yield


class ArrayBatches(keras.utils.PyDataset):
    """Shuffled (each epoch) batches of arrays, with `augment` applied in training mode."""

    def __init__(self, images, targets, batch_size, *, augment=None, shuffle=False, seed=None, workers=4):
        # Threads prepare the next batches while the accelerator runs the current one.
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=2 * workers)
        self.images, self.targets, self.batch_size = images, targets, batch_size
        self.augment, self.shuffle = augment, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images)) if shuffle else np.arange(len(images))
        # Keras' data parallelism (JAX) splits every batch evenly over the devices: the last, short
        # batch is cut to a multiple of their number (at most devices - 1 examples left out an epoch).
        devices = _data_parallel_devices()
        self.rows = len(images) - (len(images) % batch_size) % devices

    def __len__(self):
        return math.ceil(self.rows / self.batch_size)

    def __getitem__(self, index):
        rows = np.sort(self.order[:self.rows][index * self.batch_size:(index + 1) * self.batch_size])
        x = self.images[rows].astype("float32")
        if self.augment is not None:
            x = self.augment(x, training=True)
        return x, self.targets[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.images))


def _data_parallel_devices():
    """The devices a `keras.distribution` (JAX's data parallelism) splits each batch over; 1 without one."""
    distribution = keras.distribution.distribution()
    return int(np.prod(list(distribution.device_mesh.shape))) if distribution is not None else 1


def bucketed_batches(dataset, batch_size, *, shuffle=False, seed=None, boundaries=DEFAULT_BOUNDARIES, length=None):
    """Batches (ids, label) pairs so that sequences of similar length travel together.

    `length(*element)` gives an element's length (default: of its first component); every
    component is padded with 0 to the longest in its batch.

    Padding costs recurrent steps (masked, but still computed), so grouping by length
    makes an epoch several times cheaper than padding everything to the longest review.
    """
    import tensorflow as tf

    if shuffle:
        dataset = dataset.shuffle(16384, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=length or (lambda ids, *_: tf.shape(ids)[0]),
        bucket_boundaries=list(boundaries),
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
    )
    if shuffle:
        dataset = dataset.shuffle(64, seed=seed, reshuffle_each_iteration=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
