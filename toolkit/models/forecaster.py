"""A recurrent many-to-one regressor: a window of past values -> the next `horizon` values.

The output is a Gaussian per future step: its mean alone (trained with squared error, the
negative log-likelihood of a Gaussian of fixed variance), or its mean and log-variance
(trained with the full Gaussian negative log-likelihood, `toolkit.losses.GaussianNLL`).
"""

import keras

from toolkit.layers.recurrent import recurrent_layer


def build_forecaster(window, horizon, *, cell="lstm", units=32, num_layers=1, bidirectional=False,
                     activation="tanh", dropout=0.0, l2=0.0, gaussian=True):
    """`[batch, window, 1]` scaled values -> `[batch, horizon]` means (`[batch, 2 * horizon]` with variances)."""
    if window < 1 or horizon < 1:
        raise ValueError(f"window and horizon must be positive. Received: window={window!r}, horizon={horizon!r}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1. Received: num_layers={num_layers!r}")
    regularizer = keras.regularizers.L2(l2) if l2 else None  # a Gaussian prior on the weights: MAP
    inputs = keras.Input(shape=(window, 1), name="window")
    x = inputs
    for i in range(1, num_layers + 1):
        x = recurrent_layer(cell, units, return_sequences=i < num_layers, bidirectional=bidirectional,
                            activation=activation, kernel_regularizer=regularizer, name=f"rnn_{i}")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    if gaussian:
        outputs = keras.layers.Dense(2 * horizon, kernel_regularizer=regularizer, name="mean_and_log_variance",
                                     dtype="float32")(x)
    else:
        outputs = keras.layers.Dense(horizon, kernel_regularizer=regularizer, name="mean", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="forecaster")


# === Per-window scaling: the one definition that training, scoring and serving use ===
# Each window is shifted by its last value and divided by `scale` (fitted on the training split:
# the spread of its horizon-step changes), so the model forecasts changes, which carries over to
# levels never seen in training (a trending series' future). Written with operators and keras.ops,
# these run on numpy arrays (training, scoring) and on tensors inside the exported graph alike.

def scale_windows(windows, scale):
    """Model inputs `[n, window, 1]` from raw windows `[n, window]`."""
    return ((windows - windows[:, -1:]) / scale)[..., None]


def scale_targets(windows, targets, scale):
    """Training targets `[n, horizon]` from raw future values, relative to each window's last value."""
    return (targets - windows[:, -1:]) / scale


def unscale_outputs(outputs, windows, scale, gaussian):
    """(means, standard deviations or None) in the series' units, from model outputs for raw `windows`."""
    last = windows[:, -1:]
    if not gaussian:
        return outputs * scale + last, None
    horizon = outputs.shape[-1] // 2
    mean, log_variance = outputs[:, :horizon], outputs[:, horizon:]
    return mean * scale + last, keras.ops.exp(0.5 * keras.ops.clip(log_variance, -12.0, 12.0)) * scale
