"""The captioner's parts: image encoders by name, the training model, and search steps that agree with it."""

import keras
import numpy as np
import pytest

from toolkit.models.captioner import build_captioner, image_context
from toolkit.models.decoder import AttentionDecoder
from toolkit.models.image_encoders import build_image_encoder, check_name, is_frozen


@pytest.mark.parametrize("cell, attention, layers", [("lstm", "bahdanau", 1), ("gru", "luong", 2), ("lstm", None, 2)])
def test_search_steps_reproduce_teacher_forcing(cell, attention, layers):
    """Running the decoder one word at a time gives the training model's log-probabilities."""
    keras.utils.set_random_seed(0)
    model = build_captioner(30, feature_shape=(3, 3, 8), cell=cell, units=8, embedding_dim=6,
                            decoder_layers=layers, attention=attention)
    features = np.random.default_rng(0).normal(size=(2, 3, 3, 8)).astype("float32")
    ids = np.array([[2, 5, 7, 9], [2, 11, 4, 6]], "int32")
    expected = keras.ops.convert_to_numpy(keras.ops.log_softmax(model([features, ids]), axis=-1))

    memory, *bridges = image_context(model)(features)
    decoder = AttentionDecoder.from_model(model)
    assert ("attention" in decoder.layers) == (attention is not None)
    states = decoder.group_states(bridges)
    mask = np.ones(memory.shape[:2], bool)
    for t in range(ids.shape[1]):
        log_p, states = decoder.step(ids[:, t], states, memory, mask)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(log_p), expected[:, t], atol=1e-5)


def test_end_to_end_captioner_nests_its_encoder():
    encoder = build_image_encoder("cifar_resnet8", 16)
    assert not is_frozen("cifar_resnet8") and tuple(encoder.output_shape[1:]) == (4, 4, 64)
    model = build_captioner(20, encoder=encoder, units=8, embedding_dim=4)
    assert model.get_layer("image_encoder") is encoder and model.inputs[0].name == "pixels"
    logits = model([np.zeros((2, 16, 16, 3), "float32"), np.array([[2, 4, 5], [2, 6, 0]], "int32")])
    assert tuple(logits.shape) == (2, 3, 20)
    memory, h, c = image_context(model)(np.zeros((1, 16, 16, 3), "float32"))
    assert tuple(memory.shape) == (1, 16, 8) and tuple(h.shape) == tuple(c.shape) == (1, 8)


def test_keras_application_encoders_build_without_downloading():
    """The `keras:NAME` path, with the weights left random (the ImageNet download is for users online)."""
    encoder = build_image_encoder("keras:MobileNetV2", 32, weights=None)
    assert is_frozen("keras:MobileNetV2")
    assert tuple(encoder(np.full((1, 32, 32, 3), 128.0, "float32")).shape) == (1, 1, 1, 1280)


@pytest.mark.parametrize("name, message", [("vgg16", "encoder must be"), ("resnet", "encoder must be"),
                                           ("keras:NoSuchNet", "keras.applications has no")])
def test_unknown_encoders_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        build_image_encoder(name, 32, weights=None)


def test_one_image_input_is_required():
    with pytest.raises(ValueError, match="exactly one"):
        build_captioner(10)
    assert check_name("resnet18") == "resnet18"
