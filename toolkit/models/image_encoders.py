"""Image encoders for captioning: pixels in [0, 255] -> a spatial feature map `[batch, h, w, channels]`.

A captioner attends over the map's h x w positions, so the encoder stops before global pooling.
Three sources, chosen by name:

- `efficientnet_lite0`: ImageNet-pretrained EfficientNet-Lite0 (frozen; 7x7x1280 at 224 px). Its
  weights come from `toolkit convert efficientnet-lite0`, run once.
- `resnet18`, `resnet34`, `resnet50`, ... (ImageNet-style) and `cifar_resnet20`, ... (CIFAR-style):
  this project's ResNet builders, randomly initialised and trained end to end with the decoder.
- `keras:NAME`, e.g. `keras:ResNet50` or `keras:EfficientNetB0`: `keras.applications.NAME` with
  `weights="imagenet"` (downloaded by Keras on first use; frozen), with its own `preprocess_input`.

Frozen encoders run once per image before training (their features are cached); the exported
captioner contains the encoder either way, so clients send encoded image bytes.
"""

import re

import keras

EFFICIENTNET = "efficientnet_lite0"


def is_frozen(name):
    """Pretrained encoders are frozen (and their features cached); our ResNets train end to end."""
    return name == EFFICIENTNET or name.startswith("keras:")


def check_name(name):
    if name == EFFICIENTNET or name.startswith("keras:") or re.fullmatch(r"(cifar_)?resnet\d+", name or ""):
        return name
    raise ValueError(f"encoder must be {EFFICIENTNET!r}, resnetDEPTH (18, 34, 50, 101, 152), cifar_resnetDEPTH "
                     f"(6n+2) or keras:APPLICATION (e.g. keras:ResNet50). Received: encoder={name!r}")


def build_image_encoder(name, image_size=224, weights="imagenet", efficientnet_weights=None):
    """The encoder `name` for square images of `image_size` pixels.

    `weights`: "imagenet" loads pretrained weights where the encoder has them; None leaves
    them random (what an export rebuilds before loading the run's own weights).
    `efficientnet_weights`: the converted EfficientNet-Lite0 file (default: the cache).
    """
    check_name(name)
    shape = (image_size, image_size, 3)
    if name == EFFICIENTNET:
        from toolkit.models.efficientnet_lite import build_efficientnet_lite0, load_imagenet_weights

        model = build_efficientnet_lite0(input_shape=shape, include_top=False, name="image_encoder")
        if weights == "imagenet":
            load_imagenet_weights(model, efficientnet_weights)
        return model
    if name.startswith("keras:"):
        return _keras_application(name[len("keras:"):], shape, weights)
    from toolkit.models.resnet import build_cifar_resnet, build_resnet

    depth = int(re.sub(r"\D", "", name))
    if name.startswith("cifar_"):
        classifier = build_cifar_resnet(depth, input_shape=shape, num_classes=2, l2=0.0)
    else:
        classifier = build_resnet(depth, input_shape=shape, num_classes=2, l2=0.0)
    feature_map = classifier.get_layer("avg_pool").input
    return keras.Model(classifier.input, feature_map, name="image_encoder")


def _keras_application(application, shape, weights):
    import importlib

    constructor = getattr(keras.applications, application, None)
    if not callable(constructor):
        raise ValueError(f"keras.applications has no {application!r} (e.g. ResNet50, EfficientNetB0, MobileNetV2)")
    module = importlib.import_module(constructor.__module__)
    preprocess = getattr(module, "preprocess_input")
    base = constructor(include_top=False, weights=weights, input_shape=shape)
    pixels = keras.Input(shape=shape, name="pixels")
    x = keras.layers.Lambda(lambda p: preprocess(p), name="preprocess")(pixels)
    return keras.Model(pixels, base(x), name="image_encoder")
