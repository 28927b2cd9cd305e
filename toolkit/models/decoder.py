"""The recurrent decoder with attention shared by the translator and the captioner.

It writes a sentence one token at a time: at step t it reads the previous token y_{t-1},
updates its recurrent state, attends over a memory (the source sentence's encoder outputs,
or an image's feature map) and predicts p(y_t | y_<t, memory) with a softmax. The loss is
the negative log-likelihood of the reference sentence under this categorical distribution.

    y_{t-1} -> embedding -> decoder_1 -> h1_t --attention over memory--> context c_t
               [h1_t, c_t] -> decoder_2 -> ... -> h_t
               [h_t, c_t, y_{t-1}] -> output_projection (tanh) -> logits over the vocabulary

Training feeds the reference's previous token (teacher forcing), so whole sequences run at
once (`sequence`); searching runs one step at a time on the same named layers (`step`).
Because attention is computed from the first layer's state, not fed back into it, the
layers stay parallel over time while training; later layers still see the context.

With `attention=None` there is no attention: the memory only reaches the decoder through its
initial state (the image-as-initial-state captioner of Show and Tell, Vinyals et al., 2015).
"""

import keras
from keras import ops

from toolkit.layers.attention import SequenceAttention
from toolkit.layers.recurrent import recurrent_layer


class AttentionDecoder:
    """The decoder's layers, by name, and the two ways to run them."""

    def __init__(self, layers, cell, num_layers):
        self.layers, self.cell, self.num_layers = layers, cell, num_layers

    @classmethod
    def create(cls, vocabulary_size, *, cell="gru", units=256, embedding_dim=256, num_layers=1,
               attention="luong", dropout=0.0):
        if num_layers < 1:
            raise ValueError(f"decoder layers must be at least 1. Received: {num_layers!r}")
        layers = {
            "target_embedding": keras.layers.Embedding(vocabulary_size, embedding_dim, name="target_embedding"),
            "output_projection": keras.layers.Dense(embedding_dim, activation="tanh", name="output_projection"),
            "logits": keras.layers.Dense(vocabulary_size, name="logits", dtype="float32"),
            "decoder_dropout": keras.layers.Dropout(dropout, name="decoder_dropout"),
        }
        if attention is not None:
            layers["attention"] = SequenceAttention(units, attention, name="attention")
        for i in range(1, num_layers + 1):
            layers[f"decoder_{i}"] = recurrent_layer(cell, units, return_sequences=True, name=f"decoder_{i}")
        return cls(layers, cell, num_layers)

    @classmethod
    def from_model(cls, model):
        """The decoder of a trained model, its layers fetched by name."""
        names = ["target_embedding", "output_projection", "logits", "decoder_dropout"]
        num_layers = sum(1 for layer in model.layers if layer.name.startswith("decoder_") and layer.name[8:].isdigit())
        names += [f"decoder_{i}" for i in range(1, num_layers + 1)]
        names += ["attention"] if any(layer.name == "attention" for layer in model.layers) else []
        layers = {name: model.get_layer(name) for name in names}
        cell = {"GRU": "gru", "LSTM": "lstm", "SimpleRNN": "simple_rnn"}[type(layers["decoder_1"]).__name__]
        return cls(layers, cell, num_layers)

    @property
    def states_per_layer(self):
        return 2 if self.cell == "lstm" else 1

    def initial_states(self, summary, units):
        """Each layer's initial state from a summary of the memory: `bridge_i` (tanh), and `bridge_i_cell` for an LSTM.

        Returns one list of state tensors per decoder layer, as `sequence()` takes them.
        """
        states = []
        for i in range(1, self.num_layers + 1):
            layer = [keras.layers.Dense(units, activation="tanh", name=f"bridge_{i}")(summary)]
            if self.cell == "lstm":
                layer.append(keras.layers.Dense(units, name=f"bridge_{i}_cell")(summary))
            states.append(layer)
        return states

    def group_states(self, flat):
        """A flat list of state tensors (bridge outputs, in name order) -> one list per decoder layer."""
        n = self.states_per_layer
        return [list(flat[i:i + n]) for i in range(0, len(flat), n)]

    def sequence(self, target_ids, memory, memory_mask, initial_states):
        """Teacher forcing: logits `[batch, T, vocabulary]` for target ids `[batch, T]`.

        `initial_states`: one list of state tensors per decoder layer.
        """
        dropout = self.layers["decoder_dropout"]
        previous = dropout(self.layers["target_embedding"](target_ids))
        hidden = self.layers["decoder_1"](previous, initial_state=initial_states[0])
        context = self._attend(hidden, memory, memory_mask)
        for i in range(2, self.num_layers + 1):
            inputs = dropout(hidden)
            if context:
                inputs = keras.layers.Concatenate(name=f"decoder_{i}_inputs")([inputs, *context])
            hidden = self.layers[f"decoder_{i}"](inputs, initial_state=initial_states[i - 1])
        features = keras.layers.Concatenate(name="output_features")([hidden, *context, previous])
        return self._logits(features)

    def _attend(self, queries, memory, memory_mask):
        """[context] for queries `[batch, T, units]`, or [] without attention."""
        return self._attend_with_weights(queries, memory, memory_mask)[0]

    def _attend_with_weights(self, queries, memory, memory_mask):
        """([context], weights `[batch, T, S]`), or ([], None) without attention."""
        if "attention" not in self.layers:
            return [], None
        context, weights = self.layers["attention"]([queries, memory, memory_mask])
        return [context], weights

    def _logits(self, features, training=None):
        dropout = self.layers["decoder_dropout"]
        features = self.layers["output_projection"](dropout(features, training=training))
        return self.layers["logits"](dropout(features, training=training))

    def step(self, token_ids, states, memory, memory_mask, with_attention=False):
        """One step of search: (log-probabilities `[batch, vocabulary]`, new states) for tokens `[batch]`;
        `with_attention` adds the attention weights over the memory, `[batch, S]` (uniform without attention)."""
        previous = self.layers["target_embedding"](token_ids)
        new_states = []
        hidden, layer_states = self.layers["decoder_1"].cell(previous, states[0], training=False)
        new_states.append(list(layer_states))
        context, weights = self._attend_with_weights(ops.expand_dims(hidden, 1), memory, memory_mask)
        context = [c[:, 0] for c in context]
        for i in range(2, self.num_layers + 1):
            inputs = ops.concatenate([hidden, *context], axis=-1)
            hidden, layer_states = self.layers[f"decoder_{i}"].cell(inputs, states[i - 1], training=False)
            new_states.append(list(layer_states))
        logits = self._logits(ops.concatenate([hidden, *context, previous], axis=-1), training=False)
        if not with_attention:
            return ops.log_softmax(logits, axis=-1), new_states
        if weights is None:  # no attention: every position weighs the same
            mask = ops.cast(memory_mask, "float32")
            weights = mask / ops.maximum(ops.sum(mask, axis=-1, keepdims=True), 1.0)
        else:
            weights = weights[:, 0]
        return ops.log_softmax(logits, axis=-1), new_states, weights
