"""Text to token ids: one standardisation and one vocabulary, for training and serving alike."""

from pathlib import Path

import keras
import tensorflow as tf

from toolkit.atomic import read_json, write_json, write_text
from toolkit.errors import ToolkitError
from toolkit.preprocessing.tokens import APOSTROPHE, LINE_BREAK, PUNCTUATION

_PUNCTUATION = "[" + "".join("\\" + c for c in PUNCTUATION) + "]"


@keras.saving.register_keras_serializable(package="toolkit")
def standardize_text(text):
    """Lower-cases, turns HTML line breaks and punctuation into spaces and drops apostrophes.

    Invalid UTF-8 is replaced rather than failing, so any bytes a client sends get an answer.
    The rules' constants live in `toolkit.preprocessing.tokens`, which computes the same in plain Python.
    """
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, LINE_BREAK, " ")
    text = tf.strings.regex_replace(text, _PUNCTUATION, " ")
    return tf.strings.regex_replace(text, APOSTROPHE, "")


class TextPreprocessor:
    """Maps a batch of strings to padded token ids, `[batch, min(longest, max_length)]`.

    Id 0 is padding (the Embedding layer masks it), id 1 the unknown word. Sequences are
    padded only to the longest in the batch, so batch size does not change the ids, and
    cut after `max_length` tokens to bound the cost of very long texts.
    """

    CONFIG_FILE = "text_preprocessor.json"
    VOCABULARY_FILE = "vocabulary.txt"

    def __init__(self, vocabulary_size=20000, max_length=800, vocabulary=None):
        if vocabulary_size < 3:
            raise ValueError(f"vocabulary_size must be at least 3. Received: vocabulary_size={vocabulary_size!r}")
        if max_length < 1:
            raise ValueError(f"max_length must be positive. Received: max_length={max_length!r}")
        self.vocabulary_size = vocabulary_size
        self.max_length = max_length
        self.vectorizer = keras.layers.TextVectorization(
            max_tokens=vocabulary_size,
            standardize=standardize_text,
            split="whitespace",
            output_mode="int",
            vocabulary=vocabulary,
            name="text_vectorizer",
        )
        if vocabulary is not None:
            self.vectorizer.build((None,))  # ready to call and to export without adapting

    def adapt(self, texts):
        """Builds the vocabulary from a dataset of strings (the training split only)."""
        self.vectorizer.adapt(texts.batch(1024))

    def __call__(self, texts):
        ids = self.vectorizer(texts)[:, : self.max_length]
        # At least one (padding) step, so a batch of empty texts still runs through an RNN.
        return tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])

    def encode_one(self, text):
        """The ids of one string, unpadded: for `tf.data.Dataset.map` before bucketing."""
        return self(tf.expand_dims(text, 0))[0]

    @property
    def vocabulary(self):
        return self.vectorizer.get_vocabulary()

    def save(self, folder):
        folder = Path(folder)
        write_text(folder / self.VOCABULARY_FILE, "\n".join(self.vocabulary) + "\n")
        write_json(folder / self.CONFIG_FILE, {"vocabulary_size": self.vocabulary_size, "max_length": self.max_length})

    @classmethod
    def load(cls, folder):
        folder = Path(folder)
        try:
            config = read_json(folder / cls.CONFIG_FILE)
            vocabulary = (folder / cls.VOCABULARY_FILE).read_text(encoding="utf-8").split("\n")[:-1]
        except (OSError, ValueError) as e:
            raise ToolkitError(f"cannot read the text preprocessor in {folder}: {e}") from None
        # The first two entries are the padding and unknown tokens, which TextVectorization adds itself.
        return cls(vocabulary=vocabulary[2:], **config)
