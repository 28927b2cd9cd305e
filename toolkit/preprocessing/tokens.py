"""The text classifiers' token ids in plain Python: what their SavedModels compute in the graph, without TensorFlow.

A TensorFlow-free path (LiteRT runs the numeric model) prepares the ids here. The rules are written once, as the
constants below: `toolkit.preprocessing.text.standardize_text` builds its graph from them. Where Python's string
functions differ from the graph's ops (measured on TensorFlow 2.21; tests/test_tokens.py checks every code point,
random hostile strings and real reviews against the graph), this module does what the graph does:

- Invalid UTF-8 (bytes): `tf.strings.unicode_transcode(errors="replace")` puts one U+FFFD per maximal invalid
  subsequence, as Python's `bytes.decode("utf-8", "replace")` does.
- Surrogates ("\\ud800", or a pair written as two code points) are not Unicode text: `tf.constant` refuses a str
  holding one (ValueError), so the graph never sees it and the predictor answers nothing; `standardize` raises
  ValueError as well.
- NUL: `tf.strings.lower` reads its input as a C string, so a text ends at its first "\\x00".
- Lower case: ICU, not Python's `str.lower`. Both lower "İ" to "i̇" and a final "Σ" to "ς", but TensorFlow's ICU
  knows Unicode 13 only: see `_UNKNOWN_TO_TF_LOWER` and `_CASE_IGNORABLE_TO_TF`. ICU also follows the process's
  locale: under a Turkish, Azeri or Lithuanian one (LANG=tr_TR.UTF-8, ...) the graph lowers "I" to "ı" and more;
  this module lowers as ICU's root locale does, as the graph does under any other locale.
- `<br\\s*/?>` runs in RE2, whose `\\s` is [\\t\\n\\f\\r ] (Python's is Unicode whitespace; re.ASCII's adds \\v).
- Words: split="whitespace" splits on the six ASCII spaces [\\t\\n\\v\\f\\r ] only; `str.split()` also splits on
  \\x1c-\\x1f, \\x85, \\xa0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and U+3000.
"""

import re
import string
from collections import Counter
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError

# === The rules, as the graph runs them ===

LINE_BREAK = r"<br\s*/?>"  # an HTML line break (RE2 syntax), replaced by a space after lower-casing
PUNCTUATION = "".join(c for c in string.punctuation if c != "'")  # each replaced by a space, after LINE_BREAK
APOSTROPHE = "'"  # dropped, so "didn't" is one word
PADDING = ""  # id 0
UNKNOWN = "[UNK]"  # id 1: any word not in the vocabulary

# Lower case: TensorFlow's ICU knows Unicode 13; Python 3.10 too (no difference), 3.11 knows 14, 3.12 15.0 and
# 3.13 15.1. Measured over every code point, alone and around "Σ", with each of them; a newer Python may need
# more (the tests try every code point).
# Code points ICU does not know, but to which a newer Python gives a lower case or makes cased or case-ignorable:
# ICU keeps them as they are and they end the context of a final sigma ("ΑΣ" then U+0898 lowers to "ασ", to "ας"
# in Python), so `_lower` lowers the text between them.
_UNKNOWN_TO_TF_LOWER = (
    (0x0888, 0x0888), (0x0890, 0x0891), (0x0898, 0x089F), (0x08C9, 0x08D2), (0x0C3C, 0x0C3C), (0x0ECE, 0x0ECE),
    (0x180F, 0x180F), (0x1AC1, 0x1ACE), (0x1DFA, 0x1DFA), (0x2C2F, 0x2C2F), (0x2C5F, 0x2C5F),
    (0xA7C0, 0xA7C1), (0xA7D0, 0xA7D1), (0xA7D3, 0xA7D3), (0xA7D5, 0xA7D9), (0xA7F2, 0xA7F4), (0xFBC2, 0xFBC2),
    (0x10570, 0x1057A), (0x1057C, 0x1058A), (0x1058C, 0x10592), (0x10594, 0x10595), (0x10597, 0x105A1),
    (0x105A3, 0x105B1), (0x105B3, 0x105B9), (0x105BB, 0x105BC), (0x10780, 0x10785), (0x10787, 0x107B0),
    (0x107B2, 0x107BA), (0x10EFD, 0x10EFF), (0x10F82, 0x10F85), (0x11070, 0x11070), (0x11073, 0x11074),
    (0x110C2, 0x110C2), (0x11241, 0x11241), (0x11F00, 0x11F01), (0x11F36, 0x11F3A), (0x11F40, 0x11F40),
    (0x11F42, 0x11F42), (0x13439, 0x13440), (0x13447, 0x13455), (0x1AFF0, 0x1AFF3), (0x1AFF5, 0x1AFFB),
    (0x1AFFD, 0x1AFFE), (0x1CF00, 0x1CF2D), (0x1CF30, 0x1CF46), (0x1DF00, 0x1DF09), (0x1DF0B, 0x1DF1E),
    (0x1DF25, 0x1DF2A), (0x1E030, 0x1E06D), (0x1E08F, 0x1E08F), (0x1E2AE, 0x1E2AE), (0x1E4EB, 0x1E4EF),
)
# HANUNOO SIGN PAMUDPOD, a nonspacing mark in Unicode 13 and a spacing one since 14: case-ignorable to ICU (a final
# sigma's context reads past it), not to Python 3.11 and later.
_CASE_IGNORABLE_TO_TF = "\u1734"

# === The same rules in Python ===

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNKNOWN_TO_TF = re.compile("([" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _UNKNOWN_TO_TF_LOWER) + "])")
_LINE_BREAK = re.compile(LINE_BREAK.replace(r"\s", "[\t\n\f\r ]"))  # RE2's \s
_PUNCTUATION = re.compile("[" + re.escape(PUNCTUATION) + "]")
_WORD = re.compile("[^\t\n\v\f\r ]+")
_PADDING_ID, _UNKNOWN_ID = 0, 1


def _lower(text):
    """`tf.strings.lower(text, encoding="utf-8")`: Python's lower case, between the code points ICU does not know."""
    parts = _UNKNOWN_TO_TF.split(text)  # [text, unknown, text, unknown, ..., text]
    parts[::2] = [_lower_known(part) for part in parts[::2]]
    return "".join(parts)


def _lower_known(text):
    """Python's lower case, a final sigma reading past `_CASE_IGNORABLE_TO_TF` as ICU does."""
    pieces = text.split(_CASE_IGNORABLE_TO_TF)
    if len(pieces) == 1:
        return text.lower()
    # Lowered without the mark, then cut where it stood: each piece keeps its length ("Σ" -> "σ" or "ς").
    lowered, start = "".join(pieces).lower(), 0
    for i, piece in enumerate(pieces):
        end = start + len(piece.lower())
        pieces[i], start = lowered[start:end], end
    return _CASE_IGNORABLE_TO_TF.join(pieces)


def standardize(text):
    """What `standardize_text` makes of `text` (str, or bytes as the graph receives them): lower case, HTML line
    breaks and punctuation as spaces, apostrophes dropped, nothing after a NUL.

    Raises ValueError for a str holding surrogates, which TensorFlow cannot encode either.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        raise TypeError(f"text must be str or bytes. Received: {type(text).__name__}")
    elif surrogate := _SURROGATE.search(text):
        raise ValueError(f"text holds the surrogate {surrogate.group()!r} at index {surrogate.start()}, which is "
                         "not Unicode and cannot be encoded as UTF-8 (tf.constant refuses it too)")
    text = _LINE_BREAK.sub(" ", _lower(text.partition("\x00")[0]))
    return _PUNCTUATION.sub(" ", text).replace(APOSTROPHE, "")


def words(text):
    """The words of `text` as the graph's split="whitespace" yields them, after `standardize`."""
    return _WORD.findall(standardize(text))


class Vocabulary:
    """Word -> id as the graph's lookup maps it: the position in the list, 1 for a word not in it.

    `words_list` is the whole vocabulary as `TextPreprocessor.vocabulary` returns it: "" (padding, id 0)
    and "[UNK]" (id 1) first.
    """

    def __init__(self, words_list):
        self.words = list(words_list)
        if self.words[:2] != [PADDING, UNKNOWN]:
            raise ValueError(f"a vocabulary starts with {PADDING!r} and {UNKNOWN!r}. Received: {self.words[:2]!r}")
        self._ids = {word: i for i, word in enumerate(self.words)}
        if len(self._ids) < len(self.words):
            twice = next(word for word, n in Counter(self.words).items() if n > 1)
            raise ValueError(f"a vocabulary lists each word once. Received: {twice!r} more than once")

    @classmethod
    def read(cls, path):
        """The vocabulary in a `vocabulary.txt` as `TextPreprocessor.save` writes it: one word a line."""
        try:
            # Split on "\n" only: words may hold \x85, \x1c or U+2028, which str.splitlines() splits on.
            return cls(Path(path).read_text(encoding="utf-8").split("\n")[:-1])
        except (OSError, ValueError) as e:
            raise ToolkitError(f"cannot read the vocabulary {path}: {e}") from None

    def __len__(self):
        return len(self.words)

    def ids(self, text, max_length):
        """The graph's ids for one text: at most `max_length`, unpadded, except that no words give [0]."""
        if max_length < 1:
            raise ValueError(f"max_length must be positive. Received: max_length={max_length!r}")
        return [self._ids.get(word, _UNKNOWN_ID) for word in words(text)[:max_length]] or [_PADDING_ID]


def padded(rows):
    """A batch of `Vocabulary.ids` rows as the graph pads it: int32 [batch, longest], 0 after each row.

    Like the graph, an empty batch has one step: shape [0, 1].
    """
    batch = np.zeros((len(rows), max([1, *map(len, rows)])), np.int32)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    return batch


# === Short texts ===

_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")


def first_sentence(text):
    """The first sentence of `text`: up to the first run of `.`, `!` or `?` (with the closing quotes or brackets
    after it) that a space or the end follows (so "3.5" does not end it), HTML line breaks counting as spaces;
    the whole text where no sentence ends. What a one-line review looks like, cut from a long one."""
    text = re.sub(LINE_BREAK, " ", text, flags=re.IGNORECASE).strip()
    end = _SENTENCE_END.search(text)
    return text if end is None else text[:end.end()]
