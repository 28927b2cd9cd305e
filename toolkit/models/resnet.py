"""ResNets: the CIFAR-style family of depth 6n+2 and the ImageNet-style ResNet-18 to 152.

    build_cifar_resnet(20)                      ResNet-20 v1, option A shortcuts (He et al., 2015, sec. 4.2)
    build_cifar_resnet(56, version=2)           pre-activation ResNet-56 (He et al., 2016)
    build_cifar_resnet(20, residual=False)      "plain-20": the same layers without shortcuts
    build_resnet(50, input_shape=(224, 224, 3)) bottleneck ResNet-50
"""

import keras

from toolkit.layers.heads import classification_head, pixel_input
from toolkit.layers.residual import basic_block, batch_norm, bottleneck_block, conv

IMAGENET_DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
                   101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}


def build_cifar_resnet(depth=20, *, version=1, shortcut="A", residual=True, width=16, num_classes=10,
                       input_shape=(32, 32, 3), pixel_mean=None, pixel_variance=None, l2=1e-4, dropout=0.0,
                       name=None):
    """CIFAR-style ResNet: a 3x3 stem, three stages of n basic blocks (width, 2 width, 4 width), pooling.

    Args:
        depth: 6n + 2 layers with weights (20, 32, 44, 56, 110, ...).
        version: 1 (post-activation) or 2 (pre-activation).
        shortcut: "A" (identity with zero-padded channels, no parameters) or "B" (1x1 projection)
            where the shape changes.
        residual: False builds the plain network of the same depth.
        width: filters of the first stage (16 in the paper; wider networks fit the JPEG copy better).
        l2: weight decay as an L2 penalty on every kernel.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (20, 32, 44, 56, 110). Received: depth={depth!r}")
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2. Received: version={version!r}")
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut must be 'A' or 'B'. Received: shortcut={shortcut!r}")
    _check_input(input_shape, 4)
    n = (depth - 2) // 6
    name = name or f"{'resnet' if residual else 'plain'}{depth}{'_v2' if version == 2 else ''}"

    # === Stem ===
    inputs, x = pixel_input(input_shape, pixel_mean, pixel_variance)
    x = conv(width, 3, 1, l2, "stem_conv")(x)
    if version == 1:
        x = keras.layers.ReLU(name="stem_relu")(batch_norm("stem_bn")(x))

    # === Three stages of basic blocks ===
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        for block in range(n):
            strides = 2 if stage > 0 and block == 0 else 1
            x = basic_block(x, filters, strides, version=version, shortcut_kind=shortcut, residual=residual,
                            l2=l2, name=f"stage{stage + 1}_block{block + 1}")
    if version == 2:
        x = keras.layers.ReLU(name="final_relu")(batch_norm("final_bn")(x))

    # === Head ===
    outputs = classification_head(x, num_classes, dropout=dropout, l2=l2)
    return keras.Model(inputs, outputs, name=name)


def build_resnet(depth=18, *, residual=True, num_classes=1000, input_shape=(224, 224, 3), pixel_mean=None,
                 pixel_variance=None, l2=1e-4, dropout=0.0, name=None):
    """ImageNet-style ResNet: 7x7/2 stem and 3x3/2 max pool, four stages (64..512 filters), pooling.

    18 and 34 use basic blocks, 50, 101 and 152 bottleneck blocks; projection shortcuts (B).
    """
    if depth not in IMAGENET_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(IMAGENET_DEPTHS)}. Received: depth={depth!r}")
    _check_input(input_shape, 32)
    kind, blocks = IMAGENET_DEPTHS[depth]
    inputs, x = pixel_input(input_shape, pixel_mean, pixel_variance)

    # === Stem ===
    x = keras.layers.ReLU(name="stem_relu")(batch_norm("stem_bn")(conv(64, 7, 2, l2, "stem_conv")(x)))
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)

    # === Four stages ===
    for stage, (filters, count) in enumerate(zip((64, 128, 256, 512), blocks)):
        for block in range(count):
            strides = 2 if stage > 0 and block == 0 else 1
            block_name = f"stage{stage + 1}_block{block + 1}"
            if kind == "basic":
                x = basic_block(x, filters, strides, residual=residual, l2=l2, name=block_name)
            else:
                x = bottleneck_block(x, filters, strides, residual=residual, l2=l2, name=block_name)

    outputs = classification_head(x, num_classes, dropout=dropout, l2=l2)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


def _check_input(input_shape, smallest):
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(f"input_shape must be (height, width, 1 or 3). Received: input_shape={input_shape!r}")
    if min(input_shape[:2]) < smallest:
        raise ValueError(f"input_shape must be at least {smallest}x{smallest} for this network. "
                         f"Received: input_shape={input_shape!r}")
