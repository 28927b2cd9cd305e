"""A recurrent language model, many-to-many: token ids -> embedding -> RNN -> p(next word) at every step.

Trained by maximum likelihood: the loss is -log p(w_t+1 | w_1..w_t) summed over the steps, a
categorical negative log-likelihood per word (its mean's exponent is the perplexity). What it
learns about words and their order from unlabelled text starts a classifier (`--init-from`):
its `embedding` and `rnn_1..rnn_N` layers have the names, shapes and cells of the text
classifier's (`toolkit.models.text_classifier`), so their weights carry over one to one (`toolkit.pretraining`).
"""

import keras

from toolkit.layers.recurrent import recurrent_layer
from toolkit.layers.softmax import NextTokenLoss


def build_language_model(vocabulary_size, *, cell="lstm", units=256, embedding_dim=128, num_layers=1, dropout=0.0,
                         samples=1024, name="language_model"):
    """The training model: (`token_ids`, `next_ids`), both `[batch, time]` (0 = padding) -> -log p(next id).

    Args:
        vocabulary_size: token ids, padding and unknown included.
        cell: `simple_rnn`, `lstm` or `gru`; always forwards (it predicts the next word).
        units, embedding_dim, num_layers: as the text classifier's.
        dropout: on the embeddings (whole channels) and on the last layer's states.
        samples: words drawn for the sampled softmax in training (`NextTokenLoss`); 0 = full softmax.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1. Received: num_layers={num_layers!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")

    # === Embedding: padded ids, masked ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    next_ids = keras.Input(shape=(None,), dtype="int32", name="next_ids")
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
    if dropout:
        x = keras.layers.SpatialDropout1D(dropout, name="embedding_dropout")(x)

    # === Recurrent layers, a hidden state per step ===
    for i in range(num_layers):
        x = recurrent_layer(cell, units, return_sequences=True, name=f"rnn_{i + 1}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="output_dropout")(x)

    # === Softmax over the vocabulary, as -log p(next word) ===
    nll = NextTokenLoss(vocabulary_size, samples, name="softmax", dtype="float32")(x, next_ids)
    return keras.Model({"token_ids": token_ids, "next_ids": next_ids}, nll, name=name)


def next_word_function(model):
    """Token ids `[batch, time]` -> log p(next word) after each sequence's last real token, `[batch, vocabulary]`.

    Calls the layers of a trained `build_language_model` model (the full softmax), so it follows
    their weights: what sampling and serving use. Sequences are right-padded with 0; the last
    real step is the one before the padding.
    """
    from keras import ops

    layers, i = [], 1
    while _has_layer(model, f"rnn_{i}"):
        layers.append(model.get_layer(f"rnn_{i}"))
        i += 1
    embedding, softmax = model.get_layer("embedding"), model.get_layer("softmax")

    def next_word(token_ids):
        mask = token_ids > 0
        x = embedding(token_ids)
        for layer in layers:
            x = layer(x, mask=mask)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        last = ops.take_along_axis(x, ops.reshape(ops.maximum(lengths - 1, 0), (-1, 1, 1)), axis=1)[:, 0]
        return ops.log_softmax(softmax.logits(ops.cast(last, "float32")), axis=-1)

    return next_word


def _has_layer(model, name):
    return any(layer.name == name for layer in model.layers)
