import numpy as np
import pytest
import tensorflow as tf

from toolkit.preprocessing.text import TextPreprocessor, standardize_text


def test_standardize_lowercases_and_strips_markup_and_punctuation():
    out = standardize_text(tf.constant(["Great film!<br /><br />I didn't LOVE it...", "Ünïcode, ÖK"])).numpy()
    assert out[0].decode().split() == ["great", "film", "i", "didnt", "love", "it"]
    assert out[1].decode().split() == ["ünïcode", "ök"]


def test_standardize_replaces_invalid_utf8_instead_of_failing():
    out = standardize_text(tf.constant([b"bad \xff byte"])).numpy()[0].decode()
    assert out.startswith("bad ") and out.endswith(" byte")


@pytest.fixture
def preprocessor():
    pre = TextPreprocessor(vocabulary_size=20, max_length=6)
    pre.adapt(tf.data.Dataset.from_tensor_slices(["a good movie", "a bad movie", "good good plot"]))
    return pre


def test_ids_do_not_depend_on_the_batch(preprocessor):
    texts = ["good movie", "a bad bad bad bad bad bad bad movie", "", "unseen words here"]
    batch = preprocessor(tf.constant(texts)).numpy()
    assert batch.shape == (4, 6)  # padded to the longest, cut at max_length
    for row, text in zip(batch, texts):
        alone = preprocessor.encode_one(tf.constant(text)).numpy()
        np.testing.assert_array_equal(row[: len(alone)], alone)
        assert not row[len(alone):].any()
    assert list(batch[3][:3]) == [1, 1, 1]  # unknown words
    assert preprocessor(tf.constant([""])).numpy().tolist() == [[0]]  # empty text: one padding step


def test_save_and_load_give_the_same_ids(preprocessor, tmp_path):
    preprocessor.save(tmp_path)
    loaded = TextPreprocessor.load(tmp_path)
    texts = tf.constant(["a good plot", "bad unknown movie"])
    assert loaded.vocabulary == preprocessor.vocabulary
    np.testing.assert_array_equal(loaded(texts).numpy(), preprocessor(texts).numpy())


def test_invalid_settings_name_the_value():
    with pytest.raises(ValueError, match="max_length=0"):
        TextPreprocessor(max_length=0)
