"""EfficientNet-Lite0's structure: the published size, and the feature map a captioner attends over."""

import keras
import numpy as np

from toolkit.models.efficientnet_lite import build_efficientnet_lite0


def test_lite0_has_the_published_size():
    model = build_efficientnet_lite0()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_652_008  # the PyTorch reference's parameter count for the same checkpoint
    assert not any(isinstance(layer, keras.layers.Multiply) for layer in model.layers)  # Lite: no squeeze-excitation


def test_feature_map_for_attention():
    encoder = build_efficientnet_lite0(input_shape=(224, 224, 3), include_top=False)
    features = encoder(np.zeros((2, 224, 224, 3), "float32"))
    assert tuple(features.shape) == (2, 7, 7, 1280)
    assert keras.ops.convert_to_numpy(features).min() >= 0.0  # ReLU6 outputs
