"""The encoder-decoder: its step-by-step search path equals its teacher-forced training path."""

import keras
import numpy as np
import pytest

from toolkit.models.decoder import AttentionDecoder
from toolkit.models.translator import build_translator, encoder

SOURCE = np.array([[5, 6, 7, 3, 0], [8, 9, 3, 0, 0]], "int32")
TARGET = np.array([[2, 5, 6, 7], [2, 7, 4, 0]], "int32")


@pytest.mark.parametrize("cell,attention,layers", [("gru", "luong", 2), ("lstm", "bahdanau", 1),
                                                   ("simple_rnn", "luong", 1)])
def test_steps_reproduce_teacher_forcing_after_reload(cell, attention, layers, tmp_path):
    model = build_translator(20, 30, cell=cell, units=8, embedding_dim=6, decoder_layers=layers,
                             attention=attention, dropout=0.2)
    logits = keras.ops.convert_to_numpy(model([SOURCE, TARGET]))
    assert logits.shape == (2, 4, 30)
    model.save(tmp_path / "m.keras")
    model = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model([SOURCE, TARGET])), logits, atol=1e-5)

    memory, *bridges = encoder(model)(SOURCE)
    decoder = AttentionDecoder.from_model(model)
    assert decoder.cell == cell and decoder.num_layers == layers
    n = decoder.states_per_layer
    states = [bridges[i:i + n] for i in range(0, len(bridges), n)]
    expected = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits, axis=-1))
    for t in range(TARGET.shape[1]):
        log_p, states = decoder.step(TARGET[:, t], states, memory, SOURCE != 0)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(log_p)[0], expected[0, t], atol=1e-4)


def test_padding_of_the_source_changes_nothing():
    model = build_translator(20, 30, units=8, embedding_dim=6)
    short = model([SOURCE[1:, :3], TARGET[1:]])
    padded = model([SOURCE[1:], TARGET[1:]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(short), keras.ops.convert_to_numpy(padded), atol=1e-5)


@pytest.mark.parametrize("option,value,message", [("attention", "dot", "score must be one of"),
                                                   ("cell", "rnn", "cell must be one of"),
                                                   ("encoder_layers", 0, "encoder_layers must be"),
                                                   ("decoder_layers", 0, "decoder layers must be"),
                                                   ("dropout", 1.0, "dropout must be")])
def test_bad_options_are_refused(option, value, message):
    with pytest.raises(ValueError, match=message):
        build_translator(20, 30, units=8, embedding_dim=6, **{option: value})
