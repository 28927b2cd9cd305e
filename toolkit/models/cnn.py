"""The convolutional networks ResNet grew from: LeNet-5, an AlexNet-style and a VGG-style network.

Each builder checks, with `conv_output_size`, that the input is large enough for its
stack of convolutions and poolings, and says where it would shrink to nothing.
"""

import keras

from toolkit.layers.heads import classification_head, pixel_input

VGG_CONFIGS = {  # filters per 3x3 convolution, "M" = 2x2 max pooling (Simonyan and Zisserman, 2014)
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def conv_output_size(size, kernel_size, padding=0, stride=1, strict=False):
    """W_out = (W - F + 2P) / S + 1, the spatial size after a convolution or pooling.

    A fractional result is rounded down, as the frameworks do (the last rows are dropped);
    with `strict=True` it raises instead. Raises ValueError when the filter does not fit.
    """
    span = size - kernel_size + 2 * padding
    if span < 0:
        raise ValueError(f"a {kernel_size}x{kernel_size} filter does not fit a {size}x{size} input "
                         f"with padding {padding}")
    if strict and span % stride:
        raise ValueError(f"(W - F + 2P) / S = ({size} - {kernel_size} + 2*{padding}) / {stride} is not an integer")
    return span // stride + 1


def _trace(size, steps, network):
    """Follows the spatial size through (kernel, padding, stride) steps; the builders' input check."""
    for i, (kernel, padding, stride) in enumerate(steps):
        try:
            size = conv_output_size(size, kernel, padding, stride)
        except ValueError as e:
            raise ValueError(f"input too small for {network}: at layer {i + 1}, {e}") from None
    return size


def build_lenet5(*, num_classes=10, input_shape=(32, 32, 1), pixel_mean=None, pixel_variance=None, name="lenet5"):
    """LeNet-5 (LeCun et al., 1998): two 5x5 convolutions with average pooling, then 120-84 dense layers.

    A 28x28 input (MNIST, Fashion-MNIST) is padded by 2 in the first convolution, as the
    original padded its digits to 32x32.
    """
    padding = 2 if min(input_shape[:2]) < 32 else 0
    for side in input_shape[:2]:
        _trace(side, [(5, padding, 1), (2, 0, 2), (5, 0, 1), (2, 0, 2)], "lenet5")
    inputs, x = pixel_input(input_shape, pixel_mean, pixel_variance)
    if padding:
        x = keras.layers.ZeroPadding2D(padding, name="pad")(x)
    x = keras.layers.Conv2D(6, 5, activation="tanh", name="c1")(x)
    x = keras.layers.AveragePooling2D(2, name="s2")(x)
    x = keras.layers.Conv2D(16, 5, activation="tanh", name="c3")(x)
    x = keras.layers.AveragePooling2D(2, name="s4")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation="tanh", name="c5")(x)
    x = keras.layers.Dense(84, activation="tanh", name="f6")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities",
                                 dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_alexnet(*, num_classes=10, input_shape=(224, 224, 3), pixel_mean=None, pixel_variance=None,
                  dropout=0.5, l2=0.0, width=1.0, name="alexnet"):
    """AlexNet-style (Krizhevsky et al., 2012): five convolutions (large strided first, then 3x3), ReLU,
    overlapping max pooling, two dropout-regularised dense layers. Inputs under 64 px use a 3x3/1 first
    convolution so that the network still fits them (as CIFAR versions of AlexNet do)."""
    small = min(input_shape[:2]) < 64
    first = (3, 1, 1) if small else (11, 2, 4)
    for side in input_shape[:2]:
        _trace(side + (0 if small else 3), [first, (3, 0, 2), (5, 2, 1), (3, 0, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1),
                                            (3, 0, 2)], "alexnet")
    f = lambda n: max(8, int(n * width))  # noqa: E731
    regularizer = keras.regularizers.L2(l2) if l2 else None
    inputs, x = pixel_input(input_shape, pixel_mean, pixel_variance)
    if small:
        x = keras.layers.Conv2D(f(64), 3, padding="same", activation="relu", kernel_regularizer=regularizer, name="conv1")(x)
    else:
        x = keras.layers.ZeroPadding2D(((1, 2), (1, 2)), name="pad1")(x)
        x = keras.layers.Conv2D(f(64), 11, strides=4, activation="relu", kernel_regularizer=regularizer, name="conv1")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = keras.layers.Conv2D(f(192), 5, padding="same", activation="relu", kernel_regularizer=regularizer, name="conv2")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    for i, n in enumerate((384, 256, 256)):
        x = keras.layers.Conv2D(f(n), 3, padding="same", activation="relu", kernel_regularizer=regularizer,
                                name=f"conv{i + 3}")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same" if small else "valid", name="pool5")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = classification_head(x, num_classes, dropout=dropout, l2=l2, hidden=(f(4096), f(4096)) if not small
                                  else (f(1024), f(1024)))
    return keras.Model(inputs, outputs, name=name)


def build_vgg(depth=16, *, num_classes=10, input_shape=(32, 32, 3), pixel_mean=None, pixel_variance=None,
              batch_norm=True, dropout=0.5, l2=5e-4, name=None):
    """VGG-style: only 3x3 convolutions (two 3x3 see what one 5x5 sees, with fewer weights and one more
    non-linearity), max pooling between blocks, batch normalisation as in the CIFAR versions."""
    if depth not in VGG_CONFIGS:
        raise ValueError(f"depth must be one of {sorted(VGG_CONFIGS)}. Received: depth={depth!r}")
    config = VGG_CONFIGS[depth]
    for side in input_shape[:2]:
        _trace(side, [(3, 1, 1) if c != "M" else (2, 0, 2) for c in config], f"vgg{depth}")
    regularizer = keras.regularizers.L2(l2) if l2 else None
    inputs, x = pixel_input(input_shape, pixel_mean, pixel_variance)
    block, index = 1, 1
    for c in config:
        if c == "M":
            x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
            block, index = block + 1, 1
            continue
        x = keras.layers.Conv2D(c, 3, padding="same", use_bias=not batch_norm, kernel_regularizer=regularizer,
                                name=f"block{block}_conv{index}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"block{block}_bn{index}")(x)
        x = keras.layers.ReLU(name=f"block{block}_relu{index}")(x)
        index += 1
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = classification_head(x, num_classes, dropout=dropout, l2=l2, hidden=(512,))
    return keras.Model(inputs, outputs, name=name or f"vgg{depth}")
