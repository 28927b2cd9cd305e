"""Sentences to token ids and back, for models that read and write text (translation, captions).

Two tokenizers with one interface, both running as TensorFlow ops, so the same code tokenises
in `tf.data` while training and inside the exported graph while serving:

- `SubwordTokenizer`: a SentencePiece unigram model (Kudo, 2018) trained on the training split.
  Every word is spelled by pieces of the vocabulary, so nothing is unknown except characters
  never seen in training, and decoding is exact: spaces are pieces too.
- `WordTokenizer`: words and punctuation marks, the most frequent of the training split, the
  rest mapped to `<unk>`. Decoding joins words with spaces and re-attaches punctuation.

Both reserve the same ids: 0 padding, 1 unknown, 2 start of sentence, 3 end of sentence.
"""

import collections
import io
from pathlib import Path

import keras
import tensorflow as tf

from toolkit.atomic import atomic_path, read_json, write_json
from toolkit.errors import ToolkitError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
RESERVED = ("<pad>", "<unk>", "<s>", "</s>")
TOKENIZERS = ("sentencepiece", "words")

# Words are runs of letters and digits, joined by inner apostrophes and hyphens ("man's",
# "T-Shirt"); every other non-space character is a token of its own.
_ISOLATE = r"([^\pL\pN\pM\s'’-]|(?:^|\s)['’-]+|['’-]+(?:\s|$))"
_NO_SPACE_BEFORE = r" ([.,!?;:%)\]}])"
_NO_SPACE_AFTER = r"([(\[{]) "


def clean_text(text):
    """Valid UTF-8 (invalid bytes replaced), one space between words, no space at the ends."""
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    return tf.strings.strip(text)


def caption_standardize(text):
    """How captions are compared and learnt: lower case, words only (punctuation becomes space).

    "A dog runs through the grass ." -> "a dog runs through the grass". Inner apostrophes and
    hyphens stay ("man's", "t-shirt"). Training captions, references and generated captions all
    pass through this, so scores compare like with like.
    """
    text = tf.strings.lower(clean_text(text), encoding="utf-8")
    text = tf.strings.regex_replace(text, _ISOLATE, " ")
    return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


def _tidy(text):
    """One space between words, none at the ends (where an unknown piece was left out, say)."""
    return tf.strings.strip(tf.strings.regex_replace(text, r"  +", " "))


def make_tokenizer(kind, sentences, vocabulary_size):
    """A tokenizer of `kind` learnt from `sentences` (a list of strings: the training split only)."""
    if kind == "sentencepiece":
        return SubwordTokenizer.train(sentences, vocabulary_size)
    if kind == "words":
        return WordTokenizer.train(sentences, vocabulary_size)
    raise ValueError(f"tokenizer must be one of {list(TOKENIZERS)}. Received: tokenizer={kind!r}")


def load_tokenizer(folder, name):
    """The tokenizer saved by `tokenizer.save(folder, name)`."""
    path = Path(folder) / f"{name}_tokenizer.json"
    if not path.is_file():
        raise ToolkitError(f"no tokenizer {path}")
    config = read_json(path)
    data = (Path(folder) / config["file"]).read_bytes()
    if config["kind"] == "sentencepiece":
        return SubwordTokenizer(data)
    return WordTokenizer(data.decode("utf-8").split("\n"))


class SubwordTokenizer:
    """SentencePiece pieces, with TF Text's SentencePiece op (the one keras-hub's tokenizer wraps).

    The op is called directly so that eager calls, `tf.data` and the exported graph all see the
    same ragged tensors (keras-hub's layer answers eager calls with Python lists).
    """

    kind = "sentencepiece"

    def __init__(self, proto):
        import hashlib

        import tensorflow_text

        self.proto = bytes(proto)
        # The op's resource is shared by node name inside a SavedModel: two tokenizers (source
        # and target) need two names, or the reloaded graph would use one model for both.
        name = "sentencepiece_" + hashlib.sha256(self.proto).hexdigest()[:12]
        self.layer = tensorflow_text.SentencepieceTokenizer(model=self.proto, out_type=tf.int32, name=name)
        self.vocabulary_size = int(self.layer.vocab_size())

    @classmethod
    def train(cls, sentences, vocabulary_size):
        import sentencepiece

        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(s for s in sentences if s), model_writer=model, vocab_size=vocabulary_size,
            model_type="unigram", character_coverage=1.0, pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
            hard_vocab_limit=False, num_threads=2, minloglevel=2)
        return cls(model.getvalue())

    def encode(self, text):
        """A batch of strings -> ragged int32 ids (no start or end token)."""
        return self.layer.tokenize(clean_text(text))

    def decode(self, ids):
        """Ragged ids -> strings; ids 0-3 (padding, unknown, start, end) are left out."""
        ids = tf.ragged.boolean_mask(ids, ids > EOS)
        return _tidy(self.layer.detokenize(ids))

    def pieces(self, ids):
        """Ragged or dense ids -> the pieces they stand for (`▁` marks a word's start), as shown in attention maps."""
        return self.layer.id_to_string(ids)

    def trackables(self):
        return [self.layer]

    def save(self, folder, name):
        with atomic_path(Path(folder) / f"{name}.model") as tmp:
            tmp.write_bytes(self.proto)
        write_json(Path(folder) / f"{name}_tokenizer.json", {"kind": self.kind, "file": f"{name}.model"})


class WordTokenizer:
    """Words and punctuation marks, looked up in a fixed vocabulary."""

    kind = "words"

    def __init__(self, vocabulary):
        words = [w for w in vocabulary if w not in RESERVED and w]
        self.vocabulary = list(RESERVED) + words
        self.vocabulary_size = len(self.vocabulary)
        self.lookup = keras.layers.StringLookup(vocabulary=["<s>", "</s>"] + words, mask_token="<pad>",
                                                oov_token="<unk>", num_oov_indices=1, output_mode="int")
        self.words = tf.constant(self.vocabulary)

    @staticmethod
    def split(text):
        text = tf.strings.regex_replace(clean_text(text), _ISOLATE, r" \1 ")
        return tf.strings.split(tf.strings.regex_replace(tf.strings.strip(text), r"\s+", " "))

    @classmethod
    def train(cls, sentences, vocabulary_size, min_count=1):
        """The `vocabulary_size` - 4 most frequent tokens seen at least `min_count` times."""
        counts = collections.Counter()
        for start in range(0, len(sentences), 4096):
            tokens = cls.split(tf.constant(sentences[start:start + 4096])).flat_values.numpy()
            counts.update(t.decode("utf-8") for t in tokens)
        common = counts.most_common(max(vocabulary_size - len(RESERVED), 1))
        return cls([w for w, n in common if n >= min_count])

    def encode(self, text):
        return tf.cast(self.lookup(self.split(text)), tf.int32)

    def decode(self, ids):
        ids = tf.ragged.boolean_mask(ids, ids > EOS)
        text = tf.strings.reduce_join(tf.gather(self.words, ids), axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, _NO_SPACE_BEFORE, r"\1")
        return _tidy(tf.strings.regex_replace(text, _NO_SPACE_AFTER, r"\1"))

    def pieces(self, ids):
        """Ragged or dense ids -> the words they stand for, as shown in attention maps."""
        return tf.gather(self.words, ids)

    def trackables(self):
        return [self.lookup]

    def save(self, folder, name):
        with atomic_path(Path(folder) / f"{name}.vocab") as tmp:
            tmp.write_text("\n".join(self.vocabulary), encoding="utf-8")
        write_json(Path(folder) / f"{name}_tokenizer.json", {"kind": self.kind, "file": f"{name}.vocab"})
