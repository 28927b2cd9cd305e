"""Gradient diagnostics: checked against a recurrence whose Jacobians are known in closed form."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import assert_png, one_error_line
from toolkit.diagnostics import sensitivity
from toolkit.models.text_classifier import build_text_classifier


@pytest.mark.parametrize("decay", [0.5, 0.9, 1.1])
def test_linear_recurrence_decays_geometrically(decay):
    """h_t = a h_{t-1} + x_t gives dh_T/dx_t = a^(T-t) I: the measured curve must be exactly that."""
    units, length = 4, 12
    model = build_text_classifier(10, cell="simple_rnn", activation="linear", units=units, embedding_dim=units)
    rnn = model.get_layer("rnn_1")
    kernel, recurrent, bias = rnn.get_weights()
    rnn.set_weights([np.eye(units, dtype="float32"), decay * np.eye(units, dtype="float32"), np.zeros_like(bias)])
    ids = np.random.default_rng(0).integers(2, 10, size=(3, length)).astype("int32")
    hidden, loss = sensitivity(model, ids, np.array([0.0, 1.0, 1.0], "float32"))
    expected = decay ** np.arange(length)[::-1] * np.sqrt(units)  # Frobenius norm of a^(T-t) I
    np.testing.assert_allclose(hidden, expected, rtol=1e-4)
    assert loss.shape == (length,) and np.all(loss > 0)


def test_loss_gradient_matches_finite_differences():
    model = build_text_classifier(10, cell="gru", units=3, embedding_dim=2)
    ids = np.array([[3, 4, 5, 6]], "int32")
    _, loss = sensitivity(model, ids, np.array([1.0], "float32"))
    import keras
    import tensorflow as tf

    embedding = model.get_layer("embedding")
    x = embedding(ids).numpy().astype("float64")
    layers = model.layers[model.layers.index(embedding) + 1:]

    def loss_at(inputs):
        out = tf.constant(inputs, tf.float32)
        for layer in layers:
            out = layer(out, training=False)
        return float(keras.losses.binary_crossentropy(np.array([[1.0]]), out)[0])

    t, eps = 1, 1e-3
    grad = np.zeros(2)
    for e in range(2):
        up, down = x.copy(), x.copy()
        up[0, t, e] += eps
        down[0, t, e] -= eps
        grad[e] = (loss_at(up) - loss_at(down)) / (2 * eps)
    assert loss[t] == pytest.approx(np.linalg.norm(grad), rel=2e-2)


def test_diagnose_command(text_data, tmp_path):
    runner = CliRunner()
    plot = tmp_path / "g.png"
    result = runner.invoke(toolkit, ["diagnose", "gradients", "--data-dir", str(text_data), "--length", "4",
                                     "--reviews", "3", "--units", "8", "--embedding-dim", "8", "--plot", str(plot),
                                     "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["length"] == 4 and report["reviews"] == 3
    assert list(report["curves"]) == ["simple_rnn (tanh)", "lstm", "gru"]
    assert all(len(c["hidden"]) == 4 and len(c["loss"]) == 4 for c in report["curves"].values())
    assert_png(plot)


@pytest.mark.parametrize("length,message", [("0", "at least 1 token"), ("100000", "no review has 100000 tokens")])
def test_diagnose_refuses_impossible_lengths(text_data, length, message):
    result = CliRunner().invoke(toolkit, ["diagnose", "gradients", "--data-dir", str(text_data),
                                          "--length", length, "--cell", "gru"])
    assert message in one_error_line(result)


def test_recurrent_initialisation_decides_whether_a_fresh_simple_rnn_forgets():
    """Small U(-0.08, 0.08) recurrent weights shrink a SimpleRNN's sensitivity geometrically; orthogonal ones do
    not; under the same small weights the LSTM's additive cell state carries it much further."""
    import keras

    ids = np.random.default_rng(0).integers(2, 50, (4, 30)).astype("int32")
    labels = np.array([0, 1, 0, 1], "float32")
    remaining = {}
    for cell, init in (("simple_rnn", "orthogonal"), ("simple_rnn", "uniform"), ("lstm", "uniform")):
        keras.utils.set_random_seed(0)
        model = build_text_classifier(50, cell=cell, units=32, embedding_dim=32, recurrent_init=init)
        hidden, _ = sensitivity(model, ids, labels)
        remaining[cell, init] = hidden[-21] / hidden[-1]  # 20 steps back, relative to the last step
    assert remaining["simple_rnn", "orthogonal"] > 0.1
    assert remaining["simple_rnn", "uniform"] < 1e-5
    assert remaining["lstm", "uniform"] > 1000 * remaining["simple_rnn", "uniform"]


def test_unknown_recurrent_initialisations_are_refused():
    with pytest.raises(ValueError, match="recurrent_init must be one of"):
        build_text_classifier(10, cell="gru", recurrent_init="zeros")


def test_the_command_line_offers_every_recurrent_initialisation():
    from cli.options import recurrent_init
    from toolkit.layers.recurrent import RECURRENT_INITS

    choices = recurrent_init(lambda **kwargs: None).__click_params__[0].type.choices
    assert tuple(choices) == RECURRENT_INITS
