"""Losses as negative log-likelihoods, with what the built-in ones lack."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Cross-entropy against targets smoothed towards uniform: (1 - e) * NLL + e * mean over words of -log p.

    With e = 0 this is the negative log-likelihood of a categorical distribution; smoothing
    keeps the model from putting all its probability on one word (Szegedy et al., 2016).
    """

    def __init__(self, smoothing=0.0, name="smoothed_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        log_p = ops.log_softmax(y_pred, axis=-1)
        nll = -ops.take_along_axis(log_p, ops.expand_dims(ops.cast(y_true, "int32"), -1), axis=-1)[..., 0]
        if not self.smoothing:
            return nll
        return (1.0 - self.smoothing) * nll - self.smoothing * ops.mean(log_p, axis=-1)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}
