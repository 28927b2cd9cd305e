"""Batching variable-length sequences: bucketed by length, padded with 0 to the longest in the batch."""

import tensorflow as tf

DEFAULT_BOUNDARIES = (16, 32, 64, 96, 128, 160, 192, 256, 320, 400, 512, 640)


def bucketed_batches(dataset, batch_size, *, shuffle=False, seed=None, boundaries=DEFAULT_BOUNDARIES, length=None):
    """Batches (ids, label) pairs so that sequences of similar length travel together.

    `length(*element)` gives an element's length (default: of its first component); every
    component is padded with 0 to the longest in its batch.

    Padding costs recurrent steps (masked, but still computed), so grouping by length
    makes an epoch several times cheaper than padding everything to the longest review.
    """
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
