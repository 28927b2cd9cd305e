"""Hashed bigram ids: the previous and the current token, as one id in a fixed number of buckets."""

import functools

import keras
import numpy as np
from keras import ops

from toolkit.config import BIGRAM_HASHES as HASHES
from toolkit.config import MAX_BIGRAM_VOCABULARY


@functools.lru_cache(maxsize=64)
def spectral_multiplier(num_buckets, candidates=2000):
    """The multiplier `c` (below `MAX_BIGRAM_VOCABULARY`, so `previous * c` fits int32) for pairs hashed as
    `(previous * c + token) mod m`, `m = num_buckets - 1`, that keeps pairs of frequent words apart.

    Two pairs collide where `c * (a - a') + (b - b') = 0 (mod m)`: on a lattice of differences. Frequent words
    have small ids, so their pairs differ by small steps; the multiplier whose lattice has the longest shortest
    step (largest `max(|d1|, |d2|)`, at best about `sqrt(m)`: Knuth's spectral test) is chosen among the
    `candidates` largest. The vocabulary size, the multiplier of `hash="vocabulary"`, can be as bad as it gets:
    with 30,000 words and 30,000 buckets it is 1 (mod m), so (a, b), (b, a) and (a + 1, b - 1) all collide.
    """
    m = num_buckets - 1
    steps = np.arange(1, int(np.sqrt(m)) + 2, dtype="int64")
    best, best_length = None, -1
    for c in range(MAX_BIGRAM_VOCABULARY - 1, MAX_BIGRAM_VOCABULARY - 1 - candidates, -1):
        rest = (c * steps) % m
        length = int(np.min(np.maximum(steps, np.minimum(rest, m - rest))))
        if length > best_length:
            best, best_length = c, length
    return best


@keras.saving.register_keras_serializable(package="toolkit")
class HashedBigrams(keras.layers.Layer):
    """Maps token ids `[batch, time]` to ids of (previous token, token) pairs in `num_buckets` buckets.

    The pair (a, b) is `(a * c + b) mod (num_buckets - 1) + 1`, in buckets 1..num_buckets-1 (0 stays
    padding, so the mask is unchanged). `hash="spectral"` takes the `c` of `spectral_multiplier`, which keeps
    pairs of frequent words in buckets of their own; `"vocabulary"` (`c = vocabulary_size`) is the hash of
    models made before the spectral one, and what a saved layer without a `hash` reads as.

    Fed to its own embedding and added to the word embedding, it lets the RNN see short phrases ("not good")
    as units from the first step: the hashing trick of fastText, inside a recurrent model.
    """

    def __init__(self, vocabulary_size, num_buckets, hash="vocabulary", multiplier=None, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size > MAX_BIGRAM_VOCABULARY:
            raise ValueError(f"vocabulary_size must be at most {MAX_BIGRAM_VOCABULARY} for int32 pair ids. "
                             f"Received: vocabulary_size={vocabulary_size!r}")
        if num_buckets < 2:
            raise ValueError(f"num_buckets must be at least 2. Received: num_buckets={num_buckets!r}")
        if hash not in HASHES:
            raise ValueError(f"hash must be one of {list(HASHES)}. Received: hash={hash!r}")
        self.vocabulary_size = vocabulary_size
        self.num_buckets = num_buckets
        self.hash = hash
        if multiplier is None:  # a new layer; a saved one keeps the multiplier it was trained with
            multiplier = spectral_multiplier(num_buckets) if hash == "spectral" else vocabulary_size
        if not 0 < multiplier < MAX_BIGRAM_VOCABULARY:
            raise ValueError(f"multiplier must be in [1, {MAX_BIGRAM_VOCABULARY}) for int32 pair ids. "
                             f"Received: multiplier={multiplier!r}")
        self.multiplier = int(multiplier)

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        previous = ops.pad(ids[:, :-1], [[0, 0], [1, 0]])
        m = self.num_buckets - 1
        buckets = ops.mod(ops.mod(previous * self.multiplier, m) + ids, m) + 1
        return ops.where(ids == 0, ops.zeros_like(buckets), buckets)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "num_buckets": self.num_buckets,
                "hash": self.hash, "multiplier": self.multiplier}
