import keras
import numpy as np
import pytest

from toolkit.models.text_classifier import build_text_classifier, loss_and_metrics

IDS = np.array([[4, 7, 9, 3, 0, 0], [5, 2, 0, 0, 0, 0]], dtype="int32")


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "mean_max"])
def test_padding_is_masked(cell, pooling):
    model = build_text_classifier(12, cell=cell, units=4, embedding_dim=4, pooling=pooling, bidirectional=True)
    padded = model.predict(IDS, verbose=0)
    for row, length in zip(range(2), (4, 2)):
        alone = model.predict(IDS[row:row + 1, :length], verbose=0)
        np.testing.assert_allclose(padded[row], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task, classes, shape", [("binary", 2, (2, 1)), ("multiclass", 5, (2, 5)),
                                                 ("regression", 1, (2, 1))])
def test_heads(task, classes, shape):
    model = build_text_classifier(12, task=task, num_classes=classes, units=4, embedding_dim=4, num_layers=2)
    out = model.predict(IDS, verbose=0)
    assert out.shape == shape and np.isfinite(out).all()
    if task != "regression":  # probabilities
        assert ((out >= 0) & (out <= 1)).all(), out
    if task == "multiclass":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    loss, _ = loss_and_metrics(task)
    assert np.isfinite(float(loss(np.zeros(2, "float32") if task != "multiclass" else np.zeros(2, "int32"), out)))


def test_all_padding_gives_a_finite_answer():
    for pooling in ("last", "mean_max"):
        model = build_text_classifier(12, units=4, embedding_dim=4, pooling=pooling)
        assert np.isfinite(model.predict(np.zeros((1, 1), "int32"), verbose=0)).all()


def test_l2_is_a_prior_on_every_kernel_but_the_embedding():
    plain = build_text_classifier(12, units=4, embedding_dim=4)
    map_model = build_text_classifier(12, units=4, embedding_dim=4, l2=1e-3)
    assert plain.losses == [] and len(map_model.losses) == 3  # LSTM kernel, recurrent kernel, head
    assert all(float(loss) > 0 for loss in map_model.losses)


def test_layers_are_named_and_the_model_round_trips(tmp_path):
    model = build_text_classifier(12, units=4, embedding_dim=4, pooling="mean_max", dropout=0.2, bidirectional=True)
    assert {"token_ids", "embedding", "rnn_1", "max_pool", "probability"} <= {layer.name for layer in model.layers}
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(IDS, verbose=0), model.predict(IDS, verbose=0), rtol=1e-6)
    rebuilt = keras.Model.from_config(model.get_config())
    assert rebuilt.count_params() == model.count_params()


@pytest.mark.parametrize("kwargs, message", [
    (dict(cell="transformer"), "cell='transformer'"),
    (dict(task="ranking"), "task='ranking'"),
    (dict(pooling="attention"), "pooling='attention'"),
    (dict(activation="binary_step", cell="simple_rnn"), "not differentiable"),
    (dict(activation="relu", cell="lstm"), "applies to cell='simple_rnn' only"),
    (dict(num_layers=0), "num_layers=0"),
    (dict(task="multiclass", num_classes=1), "num_classes=1"),
])
def test_invalid_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_text_classifier(12, **kwargs)


def test_no_recurrent_layer_is_a_bag_of_words_until_bigrams_see_the_order():
    """`num_layers=0`: the pooled word vectors feed the head (fastText); only hashed bigrams know word order."""
    shuffled = IDS[:1, [2, 0, 3, 1, 4, 5]]  # the first review's four words in another order, then its padding
    bag = build_text_classifier(12, num_layers=0, embedding_dim=4, pooling="mean")
    assert not [layer.name for layer in bag.layers if layer.name.startswith("rnn")]
    np.testing.assert_allclose(bag.predict(shuffled, verbose=0), bag.predict(IDS[:1], verbose=0), rtol=1e-5)
    np.testing.assert_allclose(bag.predict(IDS, verbose=0)[1], bag.predict(IDS[1:, :2], verbose=0)[0], rtol=1e-5)
    ngrams = build_text_classifier(12, num_layers=0, embedding_dim=4, pooling="mean", bigram_buckets=50)
    assert not np.allclose(ngrams.predict(shuffled, verbose=0), ngrams.predict(IDS[:1], verbose=0))


def test_hashed_bigrams_keep_padding_and_see_word_order():
    from toolkit.layers.ngrams import HashedBigrams

    layer = HashedBigrams(vocabulary_size=12, num_buckets=50)
    out = np.asarray(layer(np.array([[4, 7, 9, 0], [7, 4, 9, 0]], "int32")))
    assert out[0, 3] == 0 and out[1, 3] == 0 and (out[:, :3] > 0).all() and (out < 50).all()
    assert out[0, 1] != out[1, 1]  # (4, 7) and (7, 4) are different phrases
    model = build_text_classifier(12, units=4, embedding_dim=4, bigram_buckets=50, pooling="max")
    padded = model.predict(IDS, verbose=0)
    np.testing.assert_allclose(padded[1], model.predict(IDS[1:, :2], verbose=0)[0], rtol=1e-5, atol=1e-6)
