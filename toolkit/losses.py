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


@keras.saving.register_keras_serializable(package="toolkit")
class GaussianNLL(keras.losses.Loss):
    """Negative log-likelihood of y under N(mean, exp(log_variance)), both predicted.

    `y_pred` holds `[mean_1..mean_H, log_variance_1..log_variance_H]`. With a fixed variance
    this is squared error up to constants; learning the variance lets the model say how
    sure it is (and gives prediction intervals), at the price of a loss that can be negative.
    """

    def __init__(self, name="gaussian_nll", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        mean, log_variance = split_mean_and_log_variance(y_pred)
        log_variance = ops.clip(log_variance, -12.0, 12.0)
        y_true = ops.cast(y_true, mean.dtype)
        return 0.5 * ops.mean(log_variance + ops.square(y_true - mean) * ops.exp(-log_variance) + 1.8378770664093453,
                              axis=-1)


def split_mean_and_log_variance(y_pred):
    half = ops.shape(y_pred)[-1] // 2
    return y_pred[..., :half], y_pred[..., half:]


@keras.saving.register_keras_serializable(package="toolkit")
def mean_absolute_error_of_mean(y_true, y_pred):
    """MAE of the predicted means of a Gaussian output (`[means..., log_variances...]`)."""
    mean, _ = split_mean_and_log_variance(y_pred)
    return ops.mean(ops.abs(ops.cast(y_true, mean.dtype) - mean), axis=-1)
