"""Batches for `fit()`: in-memory arrays (augmented on the fly, on any Keras backend), and
variable-length sequences bucketed by length (`tf.data`).

Under TensorFlow, arrays travel through a `tf.data` pipeline (shuffle, batch, augment in
parallel, prefetch). Under JAX or PyTorch, where `tf.data` may not exist, they go through a
`PyDataset` that runs the same augmentation layers on each batch.
"""

import math

import keras
import numpy as np

DEFAULT_BOUNDARIES = (16, 32, 64, 96, 128, 160, 192, 256, 320, 400, 512, 640)


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


class ArrayBatches(keras.utils.PyDataset):
    """Shuffled (each epoch) batches of arrays, with `augment` applied in training mode."""

    def __init__(self, images, targets, batch_size, *, augment=None, shuffle=False, seed=None, workers=4):
        # Threads prepare the next batches while the accelerator runs the current one.
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=2 * workers)
        self.images, self.targets, self.batch_size = images, targets, batch_size
        self.augment, self.shuffle = augment, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images)) if shuffle else np.arange(len(images))

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        x = self.images[rows].astype("float32")
        if self.augment is not None:
            x = self.augment(x, training=True)
        return x, self.targets[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.images))


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
