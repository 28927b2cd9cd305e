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


def test_the_spectral_hash_keeps_pairs_of_frequent_words_apart():
    """With 30,000 words and 30,000 buckets the old hash's multiplier is 1 (mod 29,999): "not good" and
    "good not" shared a bucket, and so did (a + 1, b - 1). The spectral one gives every pair of the 150 most
    frequent words a bucket of its own."""
    from toolkit.layers.ngrams import HashedBigrams, spectral_multiplier

    frequent = np.arange(2, 152, dtype="int32")
    pairs = np.stack(np.meshgrid(frequent, frequent), -1).reshape(-1, 2)  # every (previous, word) of them
    buckets = {}
    for hash_ in ("spectral", "vocabulary"):
        layer = HashedBigrams(vocabulary_size=30000, num_buckets=30000, hash=hash_)
        buckets[hash_] = np.asarray(layer(pairs))[:, 1]
    assert len(set(buckets["spectral"])) == len(pairs)
    assert len(set(buckets["vocabulary"])) < len(pairs) / 50  # (a, b) -> a + b (mod 29,999)
    assert buckets["vocabulary"][0] == (2 * 30000 + 2) % 29999 + 1  # the old models' buckets, unchanged
    assert spectral_multiplier(2_000_000) < 46340  # previous * c stays in int32


def test_a_saved_bigram_layer_without_a_hash_reads_as_the_old_one():
    from toolkit.layers.ngrams import HashedBigrams

    layer = HashedBigrams.from_config({"name": "bigram_ids", "vocabulary_size": 30, "num_buckets": 50})
    assert layer.hash == "vocabulary" and layer.multiplier == 30
    with pytest.raises(ValueError, match="hash must be one of"):
        HashedBigrams(30, 50, hash="md5")
    # A saved spectral layer keeps its multiplier, whatever later code would pick.
    config = {**HashedBigrams(30, 50, hash="spectral").get_config(), "multiplier": 7}
    assert HashedBigrams.from_config(config).multiplier == 7


def test_hashed_bigrams_keep_padding_and_see_word_order():
    from toolkit.layers.ngrams import HashedBigrams

    layer = HashedBigrams(vocabulary_size=12, num_buckets=50)
    out = np.asarray(layer(np.array([[4, 7, 9, 0], [7, 4, 9, 0]], "int32")))
    assert out[0, 3] == 0 and out[1, 3] == 0 and (out[:, :3] > 0).all() and (out < 50).all()
    assert out[0, 1] != out[1, 1]  # (4, 7) and (7, 4) are different phrases
    model = build_text_classifier(12, units=4, embedding_dim=4, bigram_buckets=50, pooling="max")
    padded = model.predict(IDS, verbose=0)
    np.testing.assert_allclose(padded[1], model.predict(IDS[1:, :2], verbose=0)[0], rtol=1e-5, atol=1e-6)


def test_naive_bayes_counts_each_text_once_and_weighs_words_by_their_log_count_ratio():
    """NBSVM: `r = log(p(word | pos) / p(word | neg))` from document counts (a repeated word counts once), and
    training starts from weights 0 (probability 0.5 for every text) and learns to separate."""
    import tensorflow as tf

    from toolkit.models.text_classifier import set_naive_bayes_ratios

    positive, negative, both = 2, 3, 4
    ids = np.array([[positive, positive, positive, both], [positive, both, 0, 0],
                    [negative, both, 0, 0], [negative, 5, 0, 0]], dtype="int32")
    labels = np.array([1, 1, 0, 0], dtype="float32")
    model = build_text_classifier(6, num_layers=0, naive_bayes=True, bigram_buckets=0, l2=1e-4)
    assert set_naive_bayes_ratios(model, [(tf.constant(ids), tf.constant(labels))]) == 8  # distinct (text, word) pairs
    ratios = model.get_layer("word_evidence").ratios.numpy()
    # Texts containing each id, plus 1, normalised (padding's count zeroed): positive {2, 4} {2, 4},
    # negative {3, 4} {3, 5}.
    p = np.array([1, 1, 3, 1, 3, 1]) / 10
    q = np.array([1, 1, 1, 3, 2, 2]) / 10
    np.testing.assert_allclose(ratios[1:], np.log(p / q)[1:], rtol=1e-5)
    assert ratios[0] == 0.0  # padding adds nothing
    np.testing.assert_allclose(model.predict(ids, verbose=0), 0.5)  # weights start at 0
    model.compile(keras.optimizers.Adam(0.1), "binary_crossentropy", metrics=["accuracy"])
    model.fit(ids, labels, epochs=20, verbose=0)
    assert model.evaluate(ids, labels, verbose=0, return_dict=True)["accuracy"] == 1.0
    assert model.losses  # the L2 prior on the weights is in the loss


def test_naive_bayes_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="task='binary' and num_layers=0"):
        build_text_classifier(12, num_layers=1, naive_bayes=True)
    with pytest.raises(ValueError, match="task='binary' and num_layers=0"):
        build_text_classifier(12, num_layers=0, naive_bayes=True, task="multiclass", num_classes=3)
