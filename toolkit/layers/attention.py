"""Soft attention of a decoder over an encoder's outputs (or an image's feature map).

For each query q_t (a decoder state) and memory m_1..m_S (encoder outputs), a score e_ts
says how well they match; softmax over s (masked: padding gets no weight) gives weights
a_ts, and the context is c_t = sum_s a_ts m_s: a different summary of the source for every
output step, instead of one fixed vector (Bahdanau et al., 2015).

- "bahdanau" (additive): e_ts = v . tanh(W q_t + U m_s)
- "luong" (multiplicative, "general"): e_ts = q_t . (W m_s) (Luong et al., 2015)
"""

import keras
from keras import ops

SCORES = ("bahdanau", "luong")


@keras.saving.register_keras_serializable(package="toolkit")
class SequenceAttention(keras.layers.Layer):
    """`[query, memory, memory_mask]` -> `(context, weights)`.

    query `[batch, T, Dq]`, memory `[batch, S, Dm]`, memory_mask `[batch, S]` (True = a real
    step); context `[batch, T, Dm]`, weights `[batch, T, S]`.
    """

    def __init__(self, units, score="luong", **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score must be one of {list(SCORES)}. Received: score={score!r}")
        if units < 1:
            raise ValueError(f"units must be positive. Received: units={units!r}")
        self.units = units
        self.score = score
        self.supports_masking = True  # the memory's mask comes in explicitly, as `memory_mask`
        if score == "bahdanau":
            self.query_dense = keras.layers.Dense(units, use_bias=False, name="query")
            self.memory_dense = keras.layers.Dense(units, name="memory")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")
        else:
            self.memory_dense = keras.layers.Dense(units, use_bias=False, name="memory")

    def build(self, input_shape):
        query_shape, memory_shape = input_shape[0], input_shape[1]
        self.memory_dense.build(memory_shape)
        if self.score == "bahdanau":
            self.query_dense.build(query_shape)
            self.v.build((None, None, None, self.units))
        elif query_shape[-1] != self.units:
            raise ValueError(f"luong attention needs queries of size units={self.units}. "
                             f"Received: query shape {query_shape}")

    def call(self, inputs):
        query, memory, memory_mask = inputs
        keys = self.memory_dense(memory)  # [B, S, U]
        if self.score == "bahdanau":
            hidden = ops.expand_dims(self.query_dense(query), 2) + ops.expand_dims(keys, 1)  # [B, T, S, U]
            scores = ops.squeeze(self.v(ops.tanh(hidden)), -1)
        else:
            scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))  # [B, T, S]
        mask = ops.expand_dims(ops.cast(memory_mask, "bool"), 1)
        scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        return ops.matmul(weights, memory), weights

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        query_shape, memory_shape = input_shape[0], input_shape[1]
        return ((*query_shape[:2], memory_shape[-1]), (*query_shape[:2], memory_shape[1]))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "score": self.score}
