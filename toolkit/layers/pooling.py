"""Pooling over time that respects the padding mask."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """The maximum over the valid (unmasked) time steps; zeros for an all-padding sequence.

    `keras.layers.GlobalMaxPooling1D` ignores the mask, so padding (whose RNN outputs are
    carried-over states) would leak into the maximum.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
        lowest = ops.full_like(inputs, -1e9)
        pooled = ops.max(ops.where(valid, inputs, lowest), axis=1)
        any_valid = ops.any(valid, axis=1)
        return ops.where(any_valid, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="toolkit")
class MaskedGlobalAveragePooling1D(keras.layers.Layer):
    """The mean over the valid (unmasked) time steps; zeros for an all-padding sequence.

    `keras.layers.GlobalAveragePooling1D` divides by the number of valid steps, which is
    0/0 = NaN for an empty text; this one answers an empty text with the bias alone.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        total = ops.sum(inputs * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
