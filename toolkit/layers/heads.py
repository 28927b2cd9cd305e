"""The ends every image classifier shares: raw pixels in, class probabilities out."""

import keras


def pixel_input(input_shape, mean=None, variance=None, name="pixels"):
    """`keras.Input` of float pixels in [0, 255], scaled inside the model.

    Pixels become [0, 1], then are standardised per channel with the training set's mean
    and variance (stored as weights), so the exported graph owns all of its preprocessing.
    Returns (inputs, scaled tensor).
    """
    inputs = keras.Input(shape=tuple(input_shape), dtype="float32", name=name)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    channels = input_shape[-1]
    mean = [0.5] * channels if mean is None else list(mean)
    variance = [0.25] * channels if variance is None else list(variance)
    x = keras.layers.Normalization(mean=mean, variance=variance, name="standardize")(x)
    return inputs, x


def classification_head(x, num_classes, *, dropout=0.0, l2=0.0, hidden=()):
    """Optional dense layers, then softmax probabilities over `num_classes`."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2. Received: num_classes={num_classes!r}")
    regularizer = keras.regularizers.L2(l2) if l2 else None
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    for i, units in enumerate(hidden):
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i + 1}_dropout")(x)
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"fc{i + 1}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer,
                              name="probabilities", dtype="float32")(x)
