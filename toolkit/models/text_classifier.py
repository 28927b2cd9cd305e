"""Recurrent text models, many-to-one: token ids -> embedding -> RNN -> a head chosen by the task.

The head and the loss are the likelihood of the targets:

| task         | output          | loss                              | likelihood                  |
|--------------|-----------------|-----------------------------------|-----------------------------|
| `binary`     | sigmoid, 1 unit | binary cross-entropy              | Bernoulli                   |
| `multiclass` | softmax, K      | categorical cross-entropy         | categorical                 |
| `regression` | linear, 1 unit  | mean squared error                | Gaussian with fixed variance|

An L2 weight penalty (`l2`) adds lambda * ||w||^2 to the loss: the negative log of a zero-mean
Gaussian prior on the weights, so training finds the MAP estimate instead of the maximum
likelihood one.
"""

import keras

from toolkit.layers.naive_bayes import NaiveBayesEvidence, distinct_ids, log_count_ratios
from toolkit.layers.ngrams import HashedBigrams
from toolkit.layers.pooling import MaskedGlobalAveragePooling1D, MaskedGlobalMaxPooling1D
from toolkit.layers.recurrent import recurrent_layer

TASKS = ("binary", "multiclass", "regression")
POOLINGS = ("last", "max", "mean", "mean_max")



def build_text_classifier(vocabulary_size, *, task="binary", num_classes=2, cell="lstm", units=64,
                          embedding_dim=128, num_layers=1, bidirectional=False, pooling="last",
                          activation="tanh", dropout=0.0, recurrent_dropout=0.0, l2=0.0, bigram_buckets=0,
                          recurrent_init="orthogonal", naive_bayes=False, bigram_hash="spectral",
                          name="text_classifier"):
    """Builds the model on token ids (`[batch, time]`, 0 = padding).

    Args:
        vocabulary_size: number of token ids, padding and unknown included.
        task: `binary`, `multiclass` or `regression` (see the module doc for heads and losses).
        num_classes: classes for `multiclass`.
        cell: `simple_rnn`, `lstm` or `gru`.
        units: hidden units per direction.
        num_layers: stacked recurrent layers; each but the last returns its whole sequence. 0: none, the
            pooled embeddings of the words (and bigrams) feed the head: a bag of n-grams, fastText's model
            (Joulin et al., 2016), linear in the words' vectors; `pooling` must then be one over time.
        bidirectional: read forwards and backwards and concatenate.
        pooling: how the sequence becomes one vector: `last` (the final hidden state, the
            classic many-to-one), `max`, `mean` or `mean_max` over the valid time steps.
        activation: the SimpleRNN's state activation.
        recurrent_init: how W_hh starts (`layers.recurrent.RECURRENT_INITS`): what decides whether a
            fresh SimpleRNN's gradient vanishes through time.
        dropout: on the embeddings (whole channels) and before the head.
        recurrent_dropout: on the recurrent state (slower: no fused kernel).
        l2: weight of the L2 penalty on all kernels but the embedding (the MAP prior).
        bigram_buckets: if set, each step's input also gets the embedding of the hashed
            (previous word, word) pair, from a table of this many rows (see `HashedBigrams`).
        bigram_hash: `HashedBigrams`' hash: "spectral", or "vocabulary" (models made before it, whose pairs of
            frequent words share buckets).
        naive_bayes: NBSVM instead (`binary` task, `num_layers=0`): the head reads the naive Bayes evidence of
            the distinct words (and hashed bigrams), each weighted by its log-count ratio times a learned
            weight (`toolkit.layers.naive_bayes`); `l2` is then the prior on those weights, and
            `cell`, `units`, `embedding_dim`, `pooling` and `dropout` build nothing.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}. Received: task={task!r}")
    if naive_bayes:
        return _naive_bayes_classifier(vocabulary_size, task=task, num_layers=num_layers, l2=l2,
                                       bigram_buckets=bigram_buckets, bigram_hash=bigram_hash, name=name)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}. Received: pooling={pooling!r}")
    if task == "multiclass" and num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 for multiclass. Received: num_classes={num_classes!r}")
    if num_layers < 0:
        raise ValueError(f"num_layers must be at least 0. Received: num_layers={num_layers!r}")
    if num_layers == 0 and pooling == "last":
        raise ValueError("num_layers=0 has no recurrent state to take the last of: pool the embeddings "
                         "(pooling='mean', 'max' or 'mean_max')")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
    regularizer = keras.regularizers.L2(l2) if l2 else None

    # === Embedding: padded ids in, a mask that follows the sequence through the RNN ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
    if bigram_buckets:
        bigrams = HashedBigrams(vocabulary_size, bigram_buckets, hash=bigram_hash, name="bigram_ids")(token_ids)
        bigrams = keras.layers.Embedding(bigram_buckets, embedding_dim, mask_zero=True,
                                         name="bigram_embedding")(bigrams)
        x = keras.layers.Add(name="word_and_bigram")([x, bigrams])
    if dropout:
        x = keras.layers.SpatialDropout1D(dropout, name="embedding_dropout")(x)

    # === Recurrent encoder ===
    for i in range(num_layers):
        last = i == num_layers - 1
        x = recurrent_layer(
            cell, units, bidirectional=bidirectional, activation=activation,
            return_sequences=not (last and pooling == "last"),
            recurrent_dropout=recurrent_dropout, kernel_regularizer=regularizer, recurrent_init=recurrent_init,
            name=f"rnn_{i + 1}",
        )(x)

    # === Pooling over time (masked) ===
    if pooling == "max":
        x = MaskedGlobalMaxPooling1D(name="max_pool")(x)
    elif pooling == "mean":
        x = MaskedGlobalAveragePooling1D(name="mean_pool")(x)
    elif pooling == "mean_max":
        x = keras.layers.Concatenate(name="mean_max_pool")([
            MaskedGlobalAveragePooling1D(name="mean_pool")(x),
            MaskedGlobalMaxPooling1D(name="max_pool")(x),
        ])
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)

    # === Head: the output distribution of the task ===
    # In float32 under mixed precision too: probabilities near 0 and 1 need its resolution.
    if task == "binary":
        outputs = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=regularizer, name="probability",
                                     dtype="float32")(x)
    elif task == "multiclass":
        outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer,
                                     name="probabilities", dtype="float32")(x)
    else:
        outputs = keras.layers.Dense(1, kernel_regularizer=regularizer, name="value", dtype="float32")(x)
    return keras.Model(token_ids, outputs, name=name)


def _naive_bayes_classifier(vocabulary_size, *, task, num_layers, l2, bigram_buckets, bigram_hash, name):
    if task != "binary" or num_layers != 0:
        raise ValueError(f"naive_bayes is a linear model of two classes: it needs task='binary' and num_layers=0. "
                         f"Received: task={task!r}, num_layers={num_layers!r}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    evidence = [NaiveBayesEvidence(vocabulary_size, l2, use_bias=True, name="word_evidence")(token_ids)]
    if bigram_buckets:
        bigrams = HashedBigrams(vocabulary_size, bigram_buckets, hash=bigram_hash, name="bigram_ids")(token_ids)
        evidence.append(NaiveBayesEvidence(bigram_buckets, l2, name="bigram_evidence")(bigrams))
    logits = keras.layers.Add(name="evidence")(evidence) if len(evidence) > 1 else evidence[0]
    # No kernel over the evidence: a free scale there would dodge the prior on the weights.
    outputs = keras.layers.Activation("sigmoid", name="probability", dtype="float32")(logits)
    return keras.Model(token_ids, outputs, name=name)


def set_naive_bayes_ratios(model, token_batches):
    """Counts, over `token_batches` (a dataset of (ids `[batch, time]`, labels 0/1)), the texts of each class
    containing each word and bigram, and sets the model's `NaiveBayesEvidence` ratios from them."""
    import numpy as np

    layers = {layer.name: layer for layer in model.layers}
    tables = [(layers["word_evidence"], None)]
    if "bigram_evidence" in layers:
        tables.append((layers["bigram_evidence"], layers["bigram_ids"]))
    counts = [np.zeros((2, layer.input_dim), dtype="int64") for layer, _ in tables]
    for ids, labels in token_batches:
        labels = np.asarray(labels).reshape(-1).astype(int)
        for (_, hashing), count in zip(tables, counts):
            table_ids = np.asarray(distinct_ids(hashing(ids) if hashing is not None else ids))
            for label in (0, 1):
                rows = table_ids[labels == label].reshape(-1)
                count[label] += np.bincount(rows, minlength=count.shape[1])
    for count in counts:
        count[:, 0] = 0  # padding
    joined = np.concatenate(counts, axis=1)
    ratios = np.split(log_count_ratios(joined[1], joined[0]), np.cumsum([c.shape[1] for c in counts])[:-1])
    for (layer, _), r in zip(tables, ratios):
        r[0] = 0.0
        layer.ratios.assign(r)
    return int(sum(c[:, 1:].sum() for c in counts))


def loss_and_metrics(task):
    """The negative log-likelihood of the task's output distribution, and the metrics to report."""
    if task == "binary":
        return keras.losses.BinaryCrossentropy(), [keras.metrics.BinaryAccuracy(name="accuracy")]
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(), [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if task == "regression":
        return keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError(name="mae")]
    raise ValueError(f"task must be one of {list(TASKS)}. Received: task={task!r}")
