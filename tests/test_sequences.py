"""Tokenisers for sentences: reserved ids, exact round trips, unknown characters, save and load."""

import pytest
import tensorflow as tf

from toolkit.preprocessing.sequences import BOS, EOS, PAD, UNK, load_tokenizer, make_tokenizer

CORPUS = ["Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
          "Mehrere Männer mit Schutzhelmen bedienen ein Antriebsradsystem.",
          "Ein kleines Mädchen klettert in ein Spielhaus aus Holz.",
          "Ein Mann in einem blauen T-Shirt fährt Fahrrad, oder?",
          "Eine Frau (mit Hut) sagt: „Hallo!“"] * 20


def decode(tokenizer, texts):
    return [t.decode("utf-8") for t in tokenizer.decode(tokenizer.encode(tf.constant(texts))).numpy()]


@pytest.mark.parametrize("kind", ["sentencepiece", "words"])
def test_round_trip_of_training_sentences(kind):
    tokenizer = make_tokenizer(kind, CORPUS, 120)
    assert decode(tokenizer, CORPUS[:4]) == CORPUS[:4]
    ids = tokenizer.encode(tf.constant(CORPUS)).flat_values.numpy()
    assert ids.min() > EOS  # 0-3 are reserved for padding, unknown, start, end
    assert ids.max() < tokenizer.vocabulary_size


@pytest.mark.parametrize("kind", ["sentencepiece", "words"])
def test_unknown_and_empty_input(kind):
    tokenizer = make_tokenizer(kind, CORPUS, 120)
    ids = tokenizer.encode(tf.constant(["", "   ", "Ein 😀 Mann 中文", b"\xff\xfe broken"]))
    assert ids.row_lengths().numpy().tolist()[:2] == [0, 0]
    assert UNK in ids[2].numpy().tolist()
    text = decode(tokenizer, ["Ein 😀 Mann"])[0]
    assert text == "Ein Mann"  # unknown tokens are left out, spaces tidied


def test_words_detokenise_punctuation():
    tokenizer = make_tokenizer("words", CORPUS, 200)
    tokens = tokenizer.split(tf.constant(["Ein Mann (mit T-Shirt), oder?"]))[0].numpy().tolist()
    assert [t.decode() for t in tokens] == ["Ein", "Mann", "(", "mit", "T-Shirt", ")", ",", "oder", "?"]


@pytest.mark.parametrize("kind", ["sentencepiece", "words"])
def test_save_and_load(kind, tmp_path):
    tokenizer = make_tokenizer(kind, CORPUS, 120)
    tokenizer.save(tmp_path, "target")
    loaded = load_tokenizer(tmp_path, "target")
    assert loaded.vocabulary_size == tokenizer.vocabulary_size
    text = tf.constant(CORPUS[:3])
    assert loaded.encode(text).to_list() == tokenizer.encode(text).to_list()


def test_reserved_ids_are_fixed():
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        make_tokenizer("bpe", CORPUS, 100)
