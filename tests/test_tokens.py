"""`toolkit.preprocessing.tokens` gives the ids the graph gives, for any text.

Against two graphs: a `TextPreprocessor` built here (TextVectorization, as training builds it) and the shipped
sentiment SavedModel's own ops, run on its own lookup tables. Inputs: every code point, hostile random strings,
invalid UTF-8, edge cases and real IMDB reviews (all 25,000 test reviews in the slow test).
"""

import json
import random
import subprocess
import sys
import tarfile
from typing import Callable, NamedTuple

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, SHARED_DATA, needs_data
from toolkit.errors import ToolkitError
from toolkit.preprocessing import tokens
from toolkit.preprocessing.text import TextPreprocessor, standardize_text

SENTIMENT = REPO / "saved_models" / "sentiment" / "1"
IMDB = "imdb/aclImdb_v1.tar.gz"
MAX_LENGTH = 64  # the rebuilt graph's: cuts long reviews
IMDB_WORDS = 5000  # the rebuilt graph's first words, then words of hostile strings

WHITESPACE = ("\t\n\v\f\r \x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
              + "\u2028\u2029\u202f\u205f\u3000")
HOSTILE = [
    "\x00", "Σ", "ΑΣ", "ΌΣΟΣ", "σ", "İ", "I", "ı", "ß", "ẞ", "ǅ", "ﬃ", "\u212a", "\u0301", "\u0307", "\u0345",
    "\u1734", "\u0898", "\U00010570", "\ua7c0", "\u2c2f", "\U0001e030",  # unknown to TensorFlow's ICU, or read apart
    "\u05d0\u05d1", "\u0627\u0644", "\u200f", "\u202e", "\u200d", "\u200c", "\ufeff", "\ufffd", "\ufffe",
    "\U0010ffff", "\ue000", "😀", "👍🏽", "👩‍👩‍👧", *WHITESPACE,
    "<br />", "<BR>", "<br/>", "<Br\t/>", "<br\v/>", "<br\x85/>", "<br\xa0>", "<br\u3000/>", "<br", "br>", "< br />",
    "!!!", "?!", "...", "'", "''", "’", "`", "didn't", "rock'n'roll", "(", ")", "[UNK]", "\\", "-", "_",
    "a", "B", "the", "film", "Movie", "GREAT", "0", "42",
]
EDGE_CASES = ["", " ", "   \t\n  ", "\x00", "\x00hidden", "!!!", "'", "'''", "<br />", "<br/><br />", "[UNK]",
              "Great film!<br /><br />I didn't LOVE it...", "ΑΣ ΑΣ. ΑΣΑ", "\u3000\xa0\x85"]


def hostile_strings(count, seed):
    """`count` strings of 0-24 hostile pieces run together; about one in thirty holds a very long word."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        pieces = rng.choices(HOSTILE, k=rng.randint(0, 24))
        if rng.random() < 0.03:
            pieces.insert(rng.randint(0, len(pieces)), rng.choice("aΣé😀") * rng.randint(1_000, 20_000))
        texts.append("".join(pieces))
    return texts


def graph_words(texts):
    """The words TextVectorization's split="whitespace" makes of `standardize_text`."""
    rows = tf.strings.split(standardize_text(tf.constant(texts))).to_list()
    return [[word.decode("utf-8") for word in row] for row in rows]


def imdb_test_reviews(limit=None):
    """The test split's reviews from the tarball (as `evaluate` reads them), `limit` of each class at most."""
    reviews, counts = [], {"neg": 0, "pos": 0}
    with tarfile.open(SHARED_DATA / IMDB, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and parts[1:2] == ["test"] and parts[2] in counts and counts[parts[2]] != limit:
                reviews.append(tar.extractfile(member).read().decode("utf-8", errors="replace"))
                counts[parts[2]] += 1
                if limit is not None and set(counts.values()) == {limit}:
                    break
    return reviews


# === The two graphs ===

class Shipped(NamedTuple):
    ids: Callable  # a batch of strings -> [the ids of member 1, 2, 3]
    vocabularies: list
    max_lengths: list


@pytest.fixture(scope="module")
def sentiment():
    """The shipped sentiment model's `serving_default`, as a concrete function of the loaded SavedModel."""
    serve, = tf.saved_model.load(str(SENTIMENT)).serving_default.concrete_functions
    return serve


@pytest.fixture(scope="module")
def shipped(sentiment):
    """The shipped sentiment model's own ops from text to each member's ids, run on its own lookup tables; and the
    members' vocabularies, read from those tables."""
    names = [t.name for t in sentiment.graph.inputs]
    captured = dict(zip(names[-len(sentiment.captured_inputs):], sentiment.captured_inputs))
    vectorizers = {name: value for name, value in captured.items() if name.startswith("text_vectorizer")}
    graph = sentiment.graph.as_graph_def()
    # Each member's ids as TextPreprocessor returns them: looked up, cut at max_length, at least one step.
    pads = sorted(n.name for n in graph.node if n.op == "Pad" and n.name.startswith("Pad"))  # Pad, Pad_1, Pad_2

    def ids(text):
        inputs = {"text:0": text, **{name: tf.identity(value) for name, value in vectorizers.items()}}
        return tf.graph_util.import_graph_def(graph, input_map=inputs, return_elements=[f"{p}:0" for p in pads])

    run = tf.compat.v1.wrap_function(ids, [tf.TensorSpec([None], tf.string)])
    tables = sorted(name for name in vectorizers if name.endswith("_table_handle:0"))
    vocabularies = []
    for table in tables:
        keys, values = tf.raw_ops.LookupTableExportV2(table_handle=vectorizers[table], Tkeys=tf.string,
                                                      Tvalues=tf.int64)
        words = [key.decode("utf-8") for key in keys.numpy()[np.argsort(values.numpy())]]
        vocabularies.append(tokens.Vocabulary([tokens.PADDING, tokens.UNKNOWN, *words]))
    metadata = json.loads((SENTIMENT / "assets.extra" / "toolkit.json").read_text())
    max_lengths = [member["train"]["max_length"] for member in metadata["ensemble"]]
    assert len(pads) == len(vocabularies) == len(max_lengths) == 3
    return Shipped(lambda texts: [ids.numpy() for ids in run(tf.constant(texts))], vocabularies, max_lengths)


@pytest.fixture(scope="module")
def rebuilt(shipped):
    """A `TextPreprocessor` built here: the shipped member 1's first IMDB_WORDS words (from IMDB reviews), then 500
    words the graph makes of hostile strings, so that odd words are found too."""
    imdb_words = shipped.vocabularies[0].words[2: 2 + IMDB_WORDS]
    known = set(imdb_words)
    odd = dict.fromkeys(w for row in graph_words(hostile_strings(500, seed=1)) for w in row if w not in known)
    odd = list(odd)[:500]  # in order, once each
    preprocessor = TextPreprocessor(vocabulary=imdb_words + odd, max_length=MAX_LENGTH)
    return preprocessor, tokens.Vocabulary(preprocessor.vocabulary)


def assert_same_ids(texts, shipped, rebuilt):
    """`tokens` gives each graph's batch of ids for `texts`, row by row and padded as one batch."""
    for expected, vocabulary, max_length in zip(shipped.ids(texts), shipped.vocabularies, shipped.max_lengths):
        np.testing.assert_array_equal(tokens.padded([vocabulary.ids(t, max_length) for t in texts]), expected)
    preprocessor, vocabulary = rebuilt
    got = tokens.padded([vocabulary.ids(t, MAX_LENGTH) for t in texts])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, preprocessor(tf.constant(texts)).numpy())


# === The rules ===

def test_the_graphs_run_the_rules_written_in_tokens(sentiment):
    """The shipped model's regexes are those `standardize_text` builds from `tokens`' constants today."""
    rebuilt = tf.function(standardize_text).get_concrete_function(tf.TensorSpec([None], tf.string)).graph

    def patterns(graph, prefix=""):
        return [(op.get_attr("pattern").decode(), op.get_attr("rewrite").decode()) for op in graph.get_operations()
                if op.type == "StaticRegexReplace" and op.name.startswith(prefix)]

    rules = [(tokens.LINE_BREAK, " "), ("[" + "".join("\\" + c for c in tokens.PUNCTUATION) + "]", " "),
             (tokens.APOSTROPHE, "")]
    assert patterns(sentiment.graph, "text_vectorizer_1/") == patterns(rebuilt) == rules


def graph_standardized(texts):
    """What `standardize_text` makes of `texts`, as str."""
    return [s.decode("utf-8") for s in standardize_text(tf.constant(texts)).numpy()]


def assert_each_code_point(context, tokens_fn, graph_fn):
    """`tokens_fn` and `graph_fn` agree on each code point in `context` ("a{}b"), but NUL (it ends a text: see
    test_edge_cases) and the surrogates (they cannot reach the graph). The code points go 4,096 to a text, apart:
    a space ends a final sigma's context and cannot be part of an HTML line break."""
    code_points = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    chunks = [code_points[i: i + 4096] for i in range(0, len(code_points), 4096)]
    texts = [" ".join(context.format(chr(c)) for c in chunk) for chunk in chunks]
    for chunk, text, expected in zip(chunks, texts, graph_fn(texts)):
        if tokens_fn(text) != expected:
            alone = [context.format(chr(c)) for c in chunk]
            wrong = [f"U+{c:04X} in {t!r}: graph {g!r}, tokens {tokens_fn(t)!r}"
                     for c, t, g in zip(chunk, alone, graph_fn(alone)) if tokens_fn(t) != g]
            pytest.fail("tokens and the graph differ on " + "; ".join(wrong[:10]))


@pytest.mark.parametrize("context", ["{}", "a{}Σ", "aΣ{}b"])  # alone, then as a final sigma's context before or after
def test_every_code_point_standardizes_as_in_the_graph(context):
    assert_each_code_point(context, tokens.standardize, graph_standardized)


def test_every_code_point_splits_as_in_the_graph():
    assert_each_code_point("a{}b", tokens.words, graph_words)


def test_edge_cases(shipped, rebuilt):
    assert_same_ids(EDGE_CASES, shipped, rebuilt)
    assert graph_words(EDGE_CASES) == [tokens.words(t) for t in EDGE_CASES]
    vocabulary = rebuilt[1]
    assert [vocabulary.ids(t, MAX_LENGTH) for t in ["", " ", "\x00hidden", "!!!", "'''", "<br />"]] == [[0]] * 6
    assert tokens.words("Great film!<br /><br />I didn't LOVE it...") == ["great", "film", "i", "didnt", "love", "it"]
    assert tokens.words("ΑΣ ΑΣ. ΑΣΑ") == ["ας", "ας", "ασα"]  # a final sigma, also before punctuation
    assert tokens.words("İ") == ["i\u0307"]
    assert tokens.standardize("<br\v/>") == " br\v  " and tokens.standardize("<br\f/>") == " "  # RE2's \s: no \v
    assert tokens.words("a\xa0b\u3000c\x1cd") == ["a\xa0b\u3000c\x1cd"]  # not the graph's whitespace
    assert tokens.words("seen\x00unseen") == ["seen"]  # the graph's lower case stops at NUL


def test_hostile_strings(shipped, rebuilt):
    texts = hostile_strings(1500, seed=0)
    assert graph_words(texts) == [tokens.words(t) for t in texts]
    assert_same_ids(texts, shipped, rebuilt)
    odd_words_found = sum(i >= 2 + IMDB_WORDS for t in texts for i in rebuilt[1].ids(t, MAX_LENGTH))
    assert odd_words_found > 1000  # not only unknown words


def test_invalid_utf8_is_replaced_as_in_the_graph(shipped, rebuilt):
    rng = random.Random(2)
    pieces = [b"\xff", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
              b"\xf8\x88\x80\x80\x80", b"\x80\xbf", b"\xe0\x80", b"\xef\xbb\xbf", b"\x00", b" ", b"A",
              "é".encode(), "😀".encode(), "Σ".encode()]
    texts = [b"".join(rng.choices(pieces, k=rng.randint(0, 12))) for _ in range(1000)]
    texts += [bytes(rng.randrange(256) for _ in range(rng.randint(0, 12))) for _ in range(1000)]
    assert [tokens.standardize(t) for t in texts] == graph_standardized(texts)
    assert_same_ids(texts, shipped, rebuilt)


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "\ud83d\ude00"])  # lone, and a pair written as two
def test_surrogates_reach_neither_the_graph_nor_tokens(text, rebuilt):
    with pytest.raises(ValueError):
        tf.constant([text], dtype=tf.string)  # as TextClassifier.predict sends texts
    with pytest.raises(ValueError, match="surrogate"):
        rebuilt[1].ids(text, MAX_LENGTH)


@needs_data(IMDB)
def test_real_reviews(shipped, rebuilt):
    assert_same_ids(imdb_test_reviews(limit=500), shipped, rebuilt)


@needs_data(IMDB)
@pytest.mark.slow
def test_all_test_reviews(shipped, rebuilt):
    reviews = imdb_test_reviews()
    assert len(reviews) == 25_000
    for i in range(0, len(reviews), 1000):
        assert_same_ids(reviews[i: i + 1000], shipped, rebuilt)


# === The vocabulary and the batch ===

def test_vocabulary_reads_what_text_preprocessor_saves(tmp_path):
    odd = ["a\x85b", "x\u2028y", "\x1c", "ω\u0301"]  # str.splitlines() would split these
    preprocessor = TextPreprocessor(vocabulary=["the", *odd], max_length=4)
    preprocessor.save(tmp_path)
    vocabulary = tokens.Vocabulary.read(tmp_path / TextPreprocessor.VOCABULARY_FILE)
    assert vocabulary.words == preprocessor.vocabulary and len(vocabulary) == 7
    texts = ["The A\x85B x\u2028y \x1c unseen words", "Ω\u0301"]
    np.testing.assert_array_equal(tokens.padded([vocabulary.ids(t, 4) for t in texts]),
                                  preprocessor(tf.constant(texts)).numpy())


def test_vocabulary_and_ids_check_their_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"starts with '' and '\[UNK\]'"):
        tokens.Vocabulary(["the", "a"])
    with pytest.raises(ValueError, match="'the' more than once"):
        tokens.Vocabulary(["", "[UNK]", "the", "a", "the"])
    with pytest.raises(ValueError, match="max_length=0"):
        tokens.Vocabulary(["", "[UNK]"]).ids("text", 0)
    with pytest.raises(TypeError, match="Received: int"):
        tokens.words(42)
    with pytest.raises(ToolkitError, match="cannot read the vocabulary"):
        tokens.Vocabulary.read(tmp_path / "missing.txt")
    (tmp_path / "vocabulary.txt").write_text("the\na\n", encoding="utf-8")
    with pytest.raises(ToolkitError, match="starts with"):
        tokens.Vocabulary.read(tmp_path / "vocabulary.txt")


def test_padded_pads_as_the_graph_pads_a_batch():
    preprocessor = TextPreprocessor(vocabulary=["good", "film"], max_length=3)
    vocabulary = tokens.Vocabulary(preprocessor.vocabulary)
    for texts in (["good film", "", "film good good good"], ["", ""], []):
        np.testing.assert_array_equal(tokens.padded([vocabulary.ids(t, 3) for t in texts]),
                                      preprocessor(tf.constant(texts, tf.string)).numpy())
    assert tokens.padded([]).shape == (0, 1)


def test_tokens_imports_neither_tensorflow_nor_keras():
    """What a TensorFlow-free path (LiteRT) prepares the ids with."""
    code = ("import sys\n"
            "from toolkit.preprocessing import tokens\n"
            "print(tokens.padded([tokens.Vocabulary(['', '[UNK]', 'good']).ids('Good, GOOD film!', 5)]).tolist(),\n"
            "      [m for m in ('tensorflow', 'keras') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["[[2,", "2,", "1]]", "[]"], out.stdout
