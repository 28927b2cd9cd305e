"""Hashed bigram ids: the previous and the current token, as one id in a fixed number of buckets."""

import keras
from keras import ops

from toolkit.config import MAX_BIGRAM_VOCABULARY


@keras.saving.register_keras_serializable(package="toolkit")
class HashedBigrams(keras.layers.Layer):
    """Maps token ids `[batch, time]` to ids of (previous token, token) pairs in `num_buckets` buckets.

    The pair (a, b) is the integer a * vocabulary_size + b, folded into buckets 1..num_buckets-1
    (0 stays padding, so the mask is unchanged). Fed to its own embedding and added to the word
    embedding, it lets the RNN see short phrases ("not good") as units from the first step: the
    hashing trick of fastText, inside a recurrent model.
    """

    def __init__(self, vocabulary_size, num_buckets, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size > MAX_BIGRAM_VOCABULARY:
            raise ValueError(f"vocabulary_size must be at most {MAX_BIGRAM_VOCABULARY} for int32 pair ids. "
                             f"Received: vocabulary_size={vocabulary_size!r}")
        if num_buckets < 2:
            raise ValueError(f"num_buckets must be at least 2. Received: num_buckets={num_buckets!r}")
        self.vocabulary_size = vocabulary_size
        self.num_buckets = num_buckets

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        previous = ops.pad(ids[:, :-1], [[0, 0], [1, 0]])
        pairs = previous * self.vocabulary_size + ids
        buckets = ops.mod(pairs, self.num_buckets - 1) + 1
        return ops.where(ids == 0, ops.zeros_like(buckets), buckets)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "num_buckets": self.num_buckets}
