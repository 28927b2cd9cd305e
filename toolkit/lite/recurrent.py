"""Text classifiers rewritten as while loops of LiteRT builtin ops.

A Keras LSTM or GRU converts to Flex `TensorList*` ops, which the pip LiteRT runtime cannot run, and
unrolling a review of 1,000 steps makes a graph too big to ship. So a model of
`toolkit.models.text_classifier.build_text_classifier` is rewritten here from its weights: the input
projections of all steps are one matmul before the loop, and a `tf.while_loop` (LiteRT `WHILE`) over the
batch's time steps carries the recurrent state and the running pooling in fixed-shape tensors. Both
directions of a bidirectional layer run in the same loop, stacked on a leading axis, so a step is one
batched matmul and one set of gate ops whichever the direction.

Keras' masking, which this reproduces: id 0 is padding (also inside a text), a padding step keeps the
state, and an all-padding row keeps the zero state, so it pools to zeros and answers with the head's
bias alone. The backward layer of `Bidirectional` reverses the whole padded sequence, so it meets the
right padding first, skips it, and reads the valid steps last to first; its outputs are flipped back to
the forward order before the concatenation. What a layer outputs at a padding step (Keras: the previous
output, or zeros inside `Bidirectional`) never matters: the next layer and the pooling skip those steps.

Models without a recurrent layer need no loop: a bag of n-grams pools its embeddings, and NBSVM
(`naive_bayes=True`) sums one folded table (ratio times weight) over each row's distinct ids, found by
sorting (LiteRT's TOPK_V2).
"""

import keras
import numpy as np
import tensorflow as tf
# `xla.dynamic_update_slice` is the one TF op that converts to LiteRT's DYNAMIC_UPDATE_SLICE (TF runs it by
# compiling it alone); tf.tensor_scatter_nd_update converts to ops that rewrite the whole tensor.
from tensorflow.compiler.tf2xla.python import xla

from toolkit.config import ACTIVATIONS
from toolkit.layers.naive_bayes import NaiveBayesEvidence, distinct_ids
from toolkit.layers.ngrams import HashedBigrams
from toolkit.layers.pooling import MaskedGlobalAveragePooling1D, MaskedGlobalMaxPooling1D

CELLS = {keras.layers.SimpleRNN: "simple_rnn", keras.layers.LSTM: "lstm", keras.layers.GRU: "gru"}
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
HEADS = {"probability": "sigmoid", "probabilities": "softmax", "value": "linear"}
POOLINGS = {(): "last", ("max_pool",): "max", ("mean_pool",): "mean", ("mean_pool", "max_pool"): "mean_max"}
LOWEST = -1e9  # what `MaskedGlobalMaxPooling1D` puts in place of a padding step
# Steps per loop iteration, unrolled, of a layer that returns its sequence. The loop carries the sequence
# [time, ...] and LiteRT copies a loop's tensors at every iteration, so writing one step per iteration
# costs time^2. A 2-layer bidirectional GRU (64 units, batch 32, 800 steps, 2 threads) took 6-8 s one
# step at a time, 1.8 s in blocks of 8, 1.1 s in blocks of 16, 0.6 s in blocks of 32 or 64 (its last
# layer alone, step by step: 0.2-0.3 s); a longer block makes a bigger graph and pads short texts more.
SEQUENCE_BLOCK = 32


def check_supported(model):
    """Raises ValueError naming what this rewrite does not cover in `model`: anything but the models
    `build_text_classifier` makes (its layers, by name and class; cells as it configures them)."""
    _Classifier(model)


def classifier_function(models):
    """A `tf.function` of ops that convert to LiteRT builtins alone, answering for `models` (an ensemble).

    Its input signature is one `int32 [batch, time]` tensor of token ids per model (`token_ids_1`,
    `token_ids_2`, ...: members have their own vocabularies and lengths), and it returns
    `{"outputs": float32 [batch, units]}`: the members' outputs summed and divided by their number, as
    the exported SavedModel averages them. The weights are captured as constants (the flatbuffer holds
    each once). ValueError where a model is not one this rewrite covers.
    """
    models = list(models)
    if not models:
        raise ValueError("classifier_function needs at least one model. Received: models=[]")
    members = [_Classifier(model) for model in models]
    heads = {(m.head_activation, m.output_units) for m in members}
    if len(heads) > 1:
        raise ValueError(f"an ensemble's members must answer the same question; their heads (activation, "
                         f"units) differ: {sorted(heads)}")
    signature = [tf.TensorSpec([None, None], tf.int32, name=f"token_ids_{i}") for i in range(1, len(models) + 1)]

    @tf.function(input_signature=signature)
    def classify(*token_ids):
        outputs = tf.add_n([member(ids) for member, ids in zip(members, token_ids)])
        return {"outputs": outputs / len(members)}

    return classify


class _Classifier:
    """One model: its weights, read from its layers by name, and its outputs computed from token ids."""

    def __init__(self, model):
        if not isinstance(model, keras.Model):
            raise ValueError(f"expected a Keras model of build_text_classifier. Received: {type(model).__name__}")
        name = model.name
        layers = {layer.name: layer for layer in model.layers}
        if len(model.inputs) != 1:
            raise ValueError(f"model {name!r} has {len(model.inputs)} inputs; a text classifier has one (token ids)")
        for layer_name, layer in layers.items():
            allowed = _RECURRENT if layer_name.startswith("rnn_") else _OTHER_LAYERS.get(layer_name, ())
            if not isinstance(layer, allowed):
                raise ValueError(f"model {name!r}: layer {layer_name!r} ({type(layer).__name__}) is not one "
                                 "build_text_classifier makes; only its models are rewritten for LiteRT")
            if getattr(layer, "quantization_mode", None):
                raise ValueError(f"model {name!r}: layer {layer_name!r} is quantized "
                                 f"({layer.quantization_mode}); only float weights are supported")

        self.naive_bayes = None
        if "word_evidence" in layers:  # NBSVM (`naive_bayes=True`): no embedding, recurrent layer or head kernel
            self._read_naive_bayes(layers, name)
            return

        # === Embeddings ===
        self.embedding = _embedding(layers, "embedding", name)
        self.bigrams = None
        if "bigram_ids" in layers or "bigram_embedding" in layers:
            hashing = layers.get("bigram_ids")
            if hashing is None:
                raise ValueError(f"model {name!r} has a bigram_embedding but no bigram_ids (HashedBigrams) layer")
            self.bigrams = (hashing, _embedding(layers, "bigram_embedding", name))

        # === Recurrent layers and pooling ===
        pools = tuple(pool for pool in ("mean_pool", "max_pool") if pool in layers)
        self.pooling = POOLINGS[pools]
        recurrent = sorted(layer_name for layer_name in layers if layer_name.startswith("rnn_"))
        count = len(recurrent)
        if any(f"rnn_{i}" not in layers for i in range(1, count + 1)):
            raise ValueError(f"model {name!r} is not a text classifier of build_text_classifier: its recurrent "
                             f"layers must be rnn_1 .. rnn_N. Received: {recurrent}")
        if count == 0 and self.pooling == "last":
            raise ValueError(f"model {name!r} has no recurrent layer and no pooling: nothing to take the last of")
        self.recurrent = []
        for i in range(1, count + 1):
            layer = layers[f"rnn_{i}"]
            sequences = i < count or self.pooling != "last"
            if layer.return_sequences != sequences or getattr(layer, "return_state", False):
                raise ValueError(f"model {name!r}: layer 'rnn_{i}' has return_sequences={layer.return_sequences}, "
                                 f"return_state={getattr(layer, 'return_state', False)}; build_text_classifier "
                                 f"gives it return_sequences={sequences} with pooling {self.pooling!r}")
            self.recurrent.append(_Recurrent(layer))

        # === Head ===
        heads = [head for head in HEADS if head in layers]
        if len(heads) != 1:
            raise ValueError(f"model {name!r} is not a text classifier of build_text_classifier: it needs one head "
                             f"layer named one of {list(HEADS)}. Received: {heads}")
        head = layers[heads[0]]
        if not isinstance(head, keras.layers.Dense):
            raise ValueError(f"model {name!r}: head {heads[0]!r} is a {type(head).__name__}; build_text_classifier "
                             "makes a Dense one")
        self.head_activation = keras.activations.serialize(head.activation)
        if self.head_activation != HEADS[heads[0]]:
            raise ValueError(f"model {name!r}: head {heads[0]!r} has activation {self.head_activation!r}; "
                             f"build_text_classifier gives it {HEADS[heads[0]]!r}")
        self.head_kernel = _constant(head.kernel)
        self.head_bias = _constant(head.bias) if head.use_bias else tf.zeros([head.units])
        self.output_units = head.units

    def _read_naive_bayes(self, layers, name):
        word = layers["word_evidence"]
        if not word.use_bias or not isinstance(layers.get("probability"), keras.layers.Activation):
            raise ValueError(f"model {name!r} is not a naive Bayes classifier of build_text_classifier: it needs a "
                             "word_evidence layer with a bias and a sigmoid 'probability' Activation")
        # (the ids' function, the folded table of their weights): the words, then the hashed bigrams if any
        evidence = [(tf.identity, word)]
        if "bigram_evidence" in layers:
            if "bigram_ids" not in layers:
                raise ValueError(f"model {name!r} has a bigram_evidence but no bigram_ids (HashedBigrams) layer")
            evidence.append((layers["bigram_ids"], layers["bigram_evidence"]))
        tables = [(ids_of, tf.constant(_array(layer.ratios) * _array(layer.kernel))) for ids_of, layer in evidence]
        bias = sum(_array(layer.bias) for _, layer in evidence if layer.use_bias)
        self.naive_bayes = (tables, tf.constant(bias))
        self.head_activation = keras.activations.serialize(layers["probability"].activation)
        if self.head_activation != "sigmoid":
            raise ValueError(f"model {name!r}: a naive Bayes classifier's head is a sigmoid. "
                             f"Received: {self.head_activation!r}")
        self.output_units = 1

    def _naive_bayes_logits(self, token_ids):
        """`NaiveBayesEvidence` of the words (and bigrams), with the weights folded into one table each."""
        tables, bias = self.naive_bayes
        logits = [tf.reduce_sum(tf.gather(table, distinct_ids(ids_of(token_ids))), axis=-1, keepdims=True)
                  for ids_of, table in tables]
        return tf.add_n(logits) + bias

    def __call__(self, token_ids):
        if self.naive_bayes is not None:
            return tf.sigmoid(self._naive_bayes_logits(token_ids))
        ids = tf.transpose(token_ids)  # [time, batch]: the loops read one step at a time
        mask = tf.not_equal(ids, 0)
        x = tf.gather(self.embedding, ids)
        if self.bigrams is not None:  # the model's own HashedBigrams, on the batch-major ids
            hashing, table = self.bigrams
            x = x + tf.gather(table, tf.transpose(hashing(token_ids)))
        for i, layer in enumerate(self.recurrent):
            x = layer(x, mask, self.pooling if i == len(self.recurrent) - 1 else "sequence")
        if not self.recurrent:  # a bag of n-grams (`num_layers=0`): the embeddings pooled as they are
            x = _pool(x, mask, self.pooling)
        return keras.activations.get(self.head_activation)(tf.matmul(x, self.head_kernel) + self.head_bias)


def _pool(x, mask, pooling):
    """`MaskedGlobalAveragePooling1D` / `MaskedGlobalMaxPooling1D` over time-major `x [time, batch, features]`."""
    valid = tf.expand_dims(tf.cast(mask, x.dtype), -1)  # not [..., None]: LiteRT's StridedSlice has no new axes
    pooled = []
    if pooling in ("mean", "mean_max"):
        pooled.append(tf.reduce_sum(x * valid, axis=0) / tf.maximum(tf.reduce_sum(valid, axis=0), 1.0))
    if pooling in ("max", "mean_max"):
        highest = tf.reduce_max(tf.where(valid > 0, x, tf.fill(tf.shape(x), LOWEST)), axis=0)
        pooled.append(tf.where(tf.reduce_max(valid, axis=0) > 0, highest, tf.zeros_like(highest)))
    return pooled[0] if len(pooled) == 1 else tf.concat(pooled, axis=-1)


class _Recurrent:
    """One recurrent layer, both directions of a bidirectional one, as one while loop."""

    def __init__(self, layer):
        if isinstance(layer, keras.layers.Bidirectional):
            if layer.merge_mode != "concat":
                raise ValueError(f"layer {layer.name!r}: merge_mode {layer.merge_mode!r} is not supported, "
                                 "only 'concat'")
            directions = [layer.forward_layer, layer.backward_layer]
            if directions[0].go_backwards or not directions[1].go_backwards:
                raise ValueError(f"layer {layer.name!r}: expected a forward layer and a go_backwards one")
        else:
            directions = [layer]
            if layer.go_backwards:
                raise ValueError(f"layer {layer.name!r}: go_backwards outside Bidirectional is not supported")
        settings = [_cell_settings(direction, layer.name) for direction in directions]
        if any(s != settings[0] for s in settings):
            raise ValueError(f"layer {layer.name!r}: its two directions differ: {settings}")
        self.cell, self.activation, self.recurrent_activation, self.units = settings[0]
        self.directions = len(directions)
        gates = GATES[self.cell] * self.units
        kernels, biases, recurrent_kernels, recurrent_biases = [], [], [], []
        for direction in directions:
            cell = direction.cell
            shape = [2, gates] if self.cell == "gru" else [gates]
            bias = _array(cell.bias) if cell.use_bias else np.zeros(shape, "float32")
            if self.cell == "gru":  # reset_after: the input bias, and the recurrent one, inside r * (h U + b)
                bias, recurrent_bias = bias
                recurrent_biases.append(recurrent_bias[None])
            kernels.append(_array(cell.kernel))
            biases.append(bias)
            recurrent_kernels.append(_array(cell.recurrent_kernel))
        # The input projections of both directions are one matmul: their kernels side by side.
        self.kernel = tf.constant(np.concatenate(kernels, axis=1))
        self.bias = tf.constant(np.concatenate(biases))
        self.recurrent_kernel = tf.constant(np.stack(recurrent_kernels))  # [direction, units, gates]
        self.recurrent_bias = tf.constant(np.stack(recurrent_biases)) if recurrent_biases else None

    def __call__(self, x, mask, output):
        """The layer on `x [time, batch, features]` (`mask [time, batch]`), returning `output`: "sequence"
        (`[time, batch, directions * units]`, for the next layer), "last" (the final states,
        `[batch, directions * units]`), or a pooling over the valid steps ("max", "mean", "mean_max")."""
        steps, batch = tf.shape(x)[0], tf.shape(x)[1]
        block = SEQUENCE_BLOCK if output == "sequence" else 1
        if block > 1:  # padding steps up to a whole block: they keep the state like any padding
            padding = tf.math.floormod(-steps, block)
            x = tf.pad(x, [[0, padding], [0, 0], [0, 0]])
            mask = tf.pad(mask, [[0, padding], [0, 0]])
        padded_steps = tf.shape(x)[0]
        d, units, gates = self.directions, self.units, GATES[self.cell] * self.units

        # === Before the loop: every step's input projection, in the order each direction reads the steps ===
        projected = tf.matmul(tf.reshape(x, [padded_steps * batch, -1]), self.kernel) + self.bias
        projected = tf.split(tf.reshape(projected, [padded_steps, batch, d * gates]), d, axis=-1)
        valid = [tf.expand_dims(mask, -1)] * d
        if d == 2:  # the backward direction reads the steps last to first
            projected[1], valid[1] = tf.reverse(projected[1], [0]), tf.reverse(valid[1], [0])
        projected = tf.reshape(tf.stack(projected, axis=1), [-1, block, d, batch, gates])
        valid = tf.reshape(tf.stack(valid, axis=1), [-1, block, d, batch, 1])

        # === The loop: one block of steps per iteration ===
        zeros = tf.zeros([d, batch, units])
        state = [zeros, zeros] if self.cell == "lstm" else [zeros]  # h (and the LSTM's c)
        pooling = output.split("_") if output not in ("last", "sequence") else []
        pools = [zeros if kind == "mean" else tf.fill([d, batch, units], LOWEST) for kind in pooling]
        sequence = [tf.zeros([padded_steps, d, batch, units])] if output == "sequence" else []

        def run_block(b, state, pools, sequence):
            outputs = []
            for x_t, valid_t in zip(tf.unstack(projected[b], block), tf.unstack(valid[b], block)):
                state = [tf.where(valid_t, new, old) for new, old in zip(self._step(x_t, state), state)]
                h = state[0]
                pools = [pool + h * tf.cast(valid_t, h.dtype) if kind == "mean"
                         else tf.where(valid_t, tf.maximum(pool, h), pool) for kind, pool in zip(pooling, pools)]
                outputs.append(h)
            if sequence:
                sequence = [xla.dynamic_update_slice(sequence[0], tf.stack(outputs), tf.stack([b * block, 0, 0, 0]))]
            return b + 1, state, pools, sequence

        _, state, pools, sequence = tf.while_loop(lambda b, *_: b < padded_steps // block, run_block,
                                                  [tf.constant(0), state, pools, sequence])

        # === After the loop ===
        if output == "sequence":
            directions = tf.unstack(sequence[0], d, axis=1)
            if d == 2:
                directions[1] = tf.reverse(directions[1], [0])  # back to the forward order
            return tf.concat(directions, axis=-1)[:steps]
        if output == "last":
            return _side_by_side(state[0])
        count = tf.reduce_sum(tf.cast(mask, tf.float32), axis=0)[:, None]
        pooled = [_side_by_side(pool) for pool in pools]
        pooled = [pool / tf.maximum(count, 1.0) if kind == "mean" else tf.where(count > 0, pool, tf.zeros_like(pool))
                  for kind, pool in zip(pooling, pooled)]
        return tf.concat(pooled, axis=-1)

    def _step(self, x, state):
        """The cell's new state from `x [direction, batch, gates]` (the input projection, input bias added),
        as Keras' cells compute it (LSTM gates i, f, c, o; GRU z, r, h with reset_after)."""
        activation = keras.activations.get(self.activation)
        gate = keras.activations.get(self.recurrent_activation)
        h = state[0]
        recurrent = tf.matmul(h, self.recurrent_kernel)
        if self.cell == "simple_rnn":
            return [activation(x + recurrent)]
        if self.cell == "lstm":
            i, f, c, o = tf.split(x + recurrent, 4, axis=-1)
            c = gate(f) * state[1] + gate(i) * activation(c)
            return [gate(o) * activation(c), c]
        x_z, x_r, x_h = tf.split(x, 3, axis=-1)
        r_z, r_r, r_h = tf.split(recurrent + self.recurrent_bias, 3, axis=-1)
        z = gate(x_z + r_z)
        candidate = activation(x_h + gate(x_r + r_r) * r_h)
        return [z * h + (1 - z) * candidate]


def _side_by_side(tensor):
    """`[direction, batch, units]` -> `[batch, direction * units]`, forward first (Bidirectional's concat)."""
    return tf.concat(tf.unstack(tensor), axis=-1)


def _cell_settings(layer, name):
    """(cell, activation, recurrent activation, units) of one direction; ValueError for what `_step` lacks."""
    if type(layer) not in CELLS:
        raise ValueError(f"layer {name!r} is a {type(layer).__name__}; supported are "
                         f"{[cell.__name__ for cell in CELLS]}")
    cell, kind = layer.cell, CELLS[type(layer)]
    activation = keras.activations.serialize(cell.activation)
    if activation not in ACTIVATIONS or (kind != "simple_rnn" and activation != "tanh"):
        raise ValueError(f"layer {name!r}: activation {activation!r} is not supported for {kind} (supported: "
                         f"{list(ACTIVATIONS) if kind == 'simple_rnn' else ['tanh']})")
    recurrent_activation = None
    if kind != "simple_rnn":
        recurrent_activation = keras.activations.serialize(cell.recurrent_activation)
        if recurrent_activation != "sigmoid":
            raise ValueError(f"layer {name!r}: recurrent_activation {recurrent_activation!r} is not supported, "
                             "only 'sigmoid'")
    if kind == "gru" and not cell.reset_after:
        raise ValueError(f"layer {name!r}: a GRU with reset_after=False is not supported")
    if layer.stateful:
        raise ValueError(f"layer {name!r}: stateful recurrent layers are not supported")
    return kind, activation, recurrent_activation, cell.units


def _embedding(layers, layer_name, model_name):
    layer = layers.get(layer_name)
    if layer is None:
        raise ValueError(f"model {model_name!r} is not a text classifier of build_text_classifier: "
                         f"it has no layer named {layer_name!r}")
    if not layer.mask_zero:
        raise ValueError(f"model {model_name!r}: layer {layer_name!r} has mask_zero=False; id 0 must be padding")
    return _constant(layer.embeddings)


def _array(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype="float32")


def _constant(variable):
    return tf.constant(_array(variable))


_RECURRENT = (keras.layers.Bidirectional, *CELLS)
# The other layers build_text_classifier may make, by name: any other layer is refused.
_OTHER_LAYERS = {
    "token_ids": keras.layers.InputLayer, "embedding": keras.layers.Embedding, "bigram_ids": HashedBigrams,
    "bigram_embedding": keras.layers.Embedding, "word_and_bigram": keras.layers.Add,
    "embedding_dropout": keras.layers.SpatialDropout1D, "mean_pool": MaskedGlobalAveragePooling1D,
    "max_pool": MaskedGlobalMaxPooling1D, "mean_max_pool": keras.layers.Concatenate,
    "head_dropout": keras.layers.Dropout, **{head: keras.layers.Dense for head in HEADS},
    # naive_bayes=True
    "word_evidence": NaiveBayesEvidence, "bigram_evidence": NaiveBayesEvidence, "evidence": keras.layers.Add,
    "probability": (keras.layers.Dense, keras.layers.Activation),
}
