"""The text classifiers' LiteRT rewrite answers as the Keras model does, in TF and through the LiteRT runtime."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.config import ACTIVATIONS
from toolkit.lite import recurrent
from toolkit.lite.recurrent import check_supported, classifier_function
from toolkit.models.text_classifier import build_text_classifier

# Right-padded rows of different lengths, an all-padding row, and a 0 inside a text (masked like padding).
IDS = np.array([[3, 5, 7, 2, 9, 11, 4, 6, 8, 1, 13, 2],
                [4, 4, 1, 8, 6, 2, 0, 0, 0, 0, 0, 0],
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype="int32")
SHORT = np.array([[5, 0, 9, 3, 0], [7, 2, 0, 0, 0]], dtype="int32")
EMPTY = np.zeros((1, 1), dtype="int32")  # an empty text: one padding step

# Every cell, both directions, 1-3 layers, every pooling and head, bigrams on and off. A block of 5 steps
# makes a 12-step batch run three blocks, the last one padded; one model keeps the shipped block.
CONFIGS = [
    dict(cell="gru", bidirectional=True, pooling="max", bigram_buckets=13, bigram_hash="spectral"),
    dict(cell="lstm", bidirectional=True, num_layers=2, pooling="mean_max", task="multiclass", num_classes=3),
    dict(cell="simple_rnn", activation="relu", pooling="last", bigram_buckets=7, task="regression"),
    dict(cell="lstm", num_layers=3, pooling="mean", bigram_buckets=11, bigram_hash="spectral"),
    dict(cell="gru", num_layers=2, pooling="last", task="multiclass", num_classes=4, dropout=0.3),
    dict(cell="simple_rnn", bidirectional=True, num_layers=3, pooling="max", task="regression"),
    dict(cell="gru", bidirectional=True, num_layers=2, pooling="mean", bigram_buckets=5, block=32),
    dict(cell="lstm", bidirectional=True, pooling="last", dropout=0.2, recurrent_dropout=0.2),
]


def to_litert(function):
    """The flatbuffer of `function` with builtin ops only: conversion fails where an op would need Flex."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    return converter.convert()


def operators(flatbuffer):
    """The names of the operators in every subgraph (the while loops' bodies too)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.Model.GetRootAs(flatbuffer, 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    found = set()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            code = codes[subgraph.Operators(o).OpcodeIndex()]
            found.add(names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])
    return found


def run_litert(flatbuffer, *token_ids):
    """The flatbuffer's output for one batch of ids per input, resized to their shapes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    inputs = sorted(interpreter.get_input_details(), key=lambda d: d["name"])
    for detail, ids in zip(inputs, token_ids):
        interpreter.resize_tensor_input(detail["index"], ids.shape)
    interpreter.allocate_tensors()
    for detail, ids in zip(inputs, token_ids):
        interpreter.set_tensor(detail["index"], ids)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def build(vocabulary_size=20, seed=0, **config):
    keras.utils.set_random_seed(seed)
    return build_text_classifier(vocabulary_size, units=5, embedding_dim=6, **config)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_the_rewrite_answers_as_keras(config, monkeypatch):
    config = dict(config)
    monkeypatch.setattr(recurrent, "SEQUENCE_BLOCK", config.pop("block", 5))
    model = build(**config)
    function = classifier_function([model])
    flatbuffer = to_litert(function)
    assert "WHILE" in operators(flatbuffer) and "CUSTOM" not in operators(flatbuffer)
    for ids in (IDS, SHORT, EMPTY):
        expected = model(ids, training=False).numpy()
        np.testing.assert_allclose(function(tf.constant(ids))["outputs"].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(run_litert(flatbuffer, ids), expected, rtol=1e-5, atol=2e-6)
    assert np.ptp(model(IDS, training=False).numpy(), axis=0).max() > 1e-4  # the rows differ: not a constant model


@pytest.mark.parametrize("pooling", ["mean", "max", "mean_max"])
def test_a_bag_of_ngrams_answers_as_keras_in_an_ensemble_with_a_reader(pooling):
    """`num_layers=0` (fastText): the embeddings pooled as they are; beside a recurrent member, as ensembles mix."""
    bag = build(seed=3, num_layers=0, pooling=pooling, bigram_buckets=13)
    reader = build(seed=4, cell="gru", bidirectional=True, pooling="max")
    flatbuffer, ensemble = to_litert(classifier_function([bag])), to_litert(classifier_function([bag, reader]))
    assert "WHILE" not in operators(flatbuffer) and "CUSTOM" not in operators(flatbuffer)
    for ids in (IDS, SHORT, EMPTY):
        expected = bag(ids, training=False).numpy()
        np.testing.assert_allclose(run_litert(flatbuffer, ids), expected, rtol=1e-5, atol=2e-6)
        both = (expected + reader(ids, training=False).numpy()) / 2
        np.testing.assert_allclose(run_litert(ensemble, ids, ids), both, rtol=1e-5, atol=2e-6)
    assert np.ptp(bag(IDS, training=False).numpy(), axis=0).max() > 1e-4  # the rows differ


def naive_bayes_model(seed, bigram_buckets=13):
    """An NBSVM with random ratios and weights (training sets them from counts; any values must convert)."""
    model = build(seed=seed, num_layers=0, naive_bayes=True, bigram_buckets=bigram_buckets, bigram_hash="spectral")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name.endswith("_evidence"):
            ratios = rng.normal(size=layer.input_dim).astype("float32")
            ratios[0] = 0.0
            layer.ratios.assign(ratios)
            layer.kernel.assign(rng.normal(size=layer.input_dim).astype("float32"))
            if layer.use_bias:
                layer.bias.assign([0.3])
    return model


@pytest.mark.parametrize("bigram_buckets", [0, 13])
def test_naive_bayes_answers_as_keras_alone_and_beside_a_reader(bigram_buckets):
    """`naive_bayes=True` (NBSVM): distinct ids sorted (TOPK_V2), no loop, the weights folded into one table."""
    nb = naive_bayes_model(5, bigram_buckets)
    reader = build(seed=4, cell="gru", bidirectional=True, pooling="max", bigram_buckets=9)
    flatbuffer, ensemble = to_litert(classifier_function([nb])), to_litert(classifier_function([nb, reader]))
    assert "WHILE" not in operators(flatbuffer) and "CUSTOM" not in operators(flatbuffer)
    repeated = np.array([[3, 3, 3, 5, 0, 0], [3, 5, 0, 0, 0, 0], [5, 3, 5, 3, 3, 5]], dtype="int32")
    for ids in (IDS, SHORT, EMPTY, repeated):
        expected = nb(ids, training=False).numpy()
        np.testing.assert_allclose(run_litert(flatbuffer, ids), expected, rtol=1e-5, atol=2e-6)
        both = (expected + reader(ids, training=False).numpy()) / 2
        np.testing.assert_allclose(run_litert(ensemble, ids, ids), both, rtol=1e-5, atol=2e-6)
    assert np.ptp(nb(IDS, training=False).numpy(), axis=0).max() > 1e-4  # the rows differ
    if not bigram_buckets:  # a bag: how often a word occurs does not count, only whether
        outputs = nb(repeated, training=False).numpy()
        assert outputs[0, 0] == pytest.approx(outputs[1, 0]) and outputs[1, 0] != pytest.approx(0.5)


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a not in ("tanh", "relu")])
def test_every_simple_rnn_activation_converts(activation):
    model = build(cell="simple_rnn", activation=activation, pooling="mean")
    flatbuffer = to_litert(classifier_function([model]))
    np.testing.assert_allclose(run_litert(flatbuffer, IDS), model(IDS, training=False).numpy(), rtol=1e-5, atol=2e-6)


def test_an_ensemble_averages_its_members():
    members = [build(20, seed=1, cell="gru", bidirectional=True, pooling="max", bigram_buckets=9),
               build(37, seed=2, cell="lstm", pooling="mean")]
    other = np.array([[30, 36, 2, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 35], [9, 0, 0, 0, 0, 0, 0]], dtype="int32")
    expected = (members[0](IDS, training=False).numpy() + members[1](other, training=False).numpy()) / 2
    function = classifier_function(members)
    assert [spec.name for spec in function.input_signature] == ["token_ids_1", "token_ids_2"]
    np.testing.assert_allclose(function(tf.constant(IDS), tf.constant(other))["outputs"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(run_litert(to_litert(function), IDS, other), expected, rtol=1e-5, atol=2e-6)


def test_the_flatbuffer_holds_each_weight_once():
    model = build(300, cell="gru", bidirectional=True, num_layers=2, pooling="max", bigram_buckets=200)
    weights = sum(w.size for w in model.get_weights()) * 4
    assert weights < len(to_litert(classifier_function([model]))) < weights + 400_000


def test_other_models_are_refused():
    from toolkit.models.forecaster import build_forecaster

    with pytest.raises(ValueError, match="not one build_text_classifier makes"):
        check_supported(build_forecaster(8, 2, units=4))
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(20, 4, mask_zero=True, name="embedding")(token_ids)
    x = keras.layers.GRU(4, reset_after=False, name="rnn_1")(x)
    model = keras.Model(token_ids, keras.layers.Dense(1, activation="sigmoid", name="probability")(x))
    with pytest.raises(ValueError, match="reset_after=False"):
        classifier_function([model])
    with pytest.raises(ValueError, match="same question"):
        classifier_function([build(), build(task="regression")])
