"""Residual blocks: y = F(x) + shortcut(x).

The identity shortcut is the point: the gradient reaches earlier layers through the
addition unchanged, so a deep stack is no harder to optimise than a shallow one (the
"degradation problem" of plain deep networks, He et al., 2015). `residual=False` builds
the same block without the shortcut, for comparison.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class ZeroPadShortcut(keras.layers.Layer):
    """Option A shortcut: subsample by `strides` and zero-pad the channels to `filters` (no parameters)."""

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, x):
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        if extra > 0:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        def down(n):
            return None if n is None else (n + self.strides - 1) // self.strides

        return (input_shape[0], down(input_shape[1]), down(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def conv(filters, kernel_size, strides=1, l2=0.0, name=None):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                               kernel_initializer="he_normal",
                               kernel_regularizer=keras.regularizers.L2(l2) if l2 else None, name=name)


def batch_norm(name):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def shortcut(x, filters, strides, kind, l2, name):
    """Identity where shapes agree; otherwise option A (zero padding) or B (1x1 projection)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    if kind == "A":
        return ZeroPadShortcut(filters, strides, name=f"{name}_pad")(x)
    x = conv(filters, 1, strides, l2, name=f"{name}_proj")(x)
    return batch_norm(f"{name}_proj_bn")(x)


def basic_block(x, filters, strides=1, *, version=1, shortcut_kind="B", residual=True, l2=0.0, name="block"):
    """Two 3x3 convolutions. v1: conv-BN-ReLU-conv-BN, add, ReLU. v2 (pre-activation): BN-ReLU-conv twice, add."""
    if version == 1:
        y = conv(filters, 3, strides, l2, f"{name}_conv1")(x)
        y = keras.layers.ReLU(name=f"{name}_relu1")(batch_norm(f"{name}_bn1")(y))
        y = batch_norm(f"{name}_bn2")(conv(filters, 3, 1, l2, f"{name}_conv2")(y))
        if residual:
            y = keras.layers.Add(name=f"{name}_add")([shortcut(x, filters, strides, shortcut_kind, l2, name), y])
        return keras.layers.ReLU(name=f"{name}_out")(y)
    pre = keras.layers.ReLU(name=f"{name}_relu1")(batch_norm(f"{name}_bn1")(x))
    y = conv(filters, 3, strides, l2, f"{name}_conv1")(pre)
    y = keras.layers.ReLU(name=f"{name}_relu2")(batch_norm(f"{name}_bn2")(y))
    y = conv(filters, 3, 1, l2, f"{name}_conv2")(y)
    if not residual:
        return y
    # Pre-activation: a projection shortcut reads the activated input, the identity the raw one.
    source = x if (strides == 1 and x.shape[-1] == filters) else pre
    return keras.layers.Add(name=f"{name}_add")([shortcut(source, filters, strides, shortcut_kind, l2, name), y])


def bottleneck_block(x, filters, strides=1, *, residual=True, l2=0.0, name="block"):
    """1x1 reduce, 3x3, 1x1 expand (x4), projection shortcut where shapes change (ResNet-50 and deeper)."""
    out = filters * 4
    y = keras.layers.ReLU(name=f"{name}_relu1")(batch_norm(f"{name}_bn1")(conv(filters, 1, 1, l2, f"{name}_conv1")(x)))
    y = keras.layers.ReLU(name=f"{name}_relu2")(batch_norm(f"{name}_bn2")(conv(filters, 3, strides, l2, f"{name}_conv2")(y)))
    y = batch_norm(f"{name}_bn3")(conv(out, 1, 1, l2, f"{name}_conv3")(y))
    if residual:
        y = keras.layers.Add(name=f"{name}_add")([shortcut(x, out, strides, "B", l2, name), y])
    return keras.layers.ReLU(name=f"{name}_out")(y)
