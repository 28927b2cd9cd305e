"""A recurrent encoder-decoder with attention: many-to-many, a sentence in, a sentence out.

The encoder reads the source ids (padding masked) with a (bidirectional) GRU or LSTM and
keeps every step's output as the memory the decoder attends over; the decoder's initial
state is a tanh projection of the memory's masked mean (`bridge_*`). See `decoder.py` for
the decoder. The training model maps `[source_ids, target_ids]` -> logits; `encoder()`
and `AttentionDecoder.from_model()` take it apart by layer names for search.
"""

import keras
from keras import ops

from toolkit.layers.pooling import MaskedGlobalAveragePooling1D
from toolkit.layers.recurrent import recurrent_layer
from toolkit.models.decoder import AttentionDecoder


def build_translator(source_vocabulary_size, target_vocabulary_size, *, cell="gru", units=256, embedding_dim=256,
                     encoder_layers=1, decoder_layers=1, bidirectional=True, attention="luong", dropout=0.0):
    """The training model: `[source_ids, target_ids]` -> logits `[batch, T, target_vocabulary_size]`."""
    if encoder_layers < 1:
        raise ValueError(f"encoder_layers must be at least 1. Received: encoder_layers={encoder_layers!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
    source = keras.Input(shape=(None,), dtype="int32", name="source_ids")
    target = keras.Input(shape=(None,), dtype="int32", name="target_ids")

    # === Encoder ===
    x = keras.layers.Embedding(source_vocabulary_size, embedding_dim, mask_zero=True, name="source_embedding")(source)
    x = keras.layers.Dropout(dropout, name="source_dropout")(x)
    for i in range(1, encoder_layers + 1):
        x = recurrent_layer(cell, units, return_sequences=True, bidirectional=bidirectional, name=f"encoder_{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"encoder_{i}_dropout")(x)
    memory = x
    summary = MaskedGlobalAveragePooling1D(name="memory_mean")(memory)
    decoder = AttentionDecoder.create(target_vocabulary_size, cell=cell, units=units, embedding_dim=embedding_dim,
                                      num_layers=decoder_layers, attention=attention, dropout=dropout)
    initial_states = decoder.initial_states(summary, units)

    # === Decoder ===
    memory_mask = ops.not_equal(source, 0)
    logits = decoder.sequence(target, memory, memory_mask, initial_states)
    return keras.Model([source, target], logits, name="translator")


def encoder(model):
    """The encoder of a trained translator: source ids -> [memory, initial states of each decoder layer...]."""
    last = max(int(layer.name.split("_")[1]) for layer in model.layers
               if layer.name.startswith("encoder_") and layer.name.endswith("_dropout"))
    bridges = sorted((layer for layer in model.layers if layer.name.startswith("bridge_")), key=lambda l: l.name)
    outputs = [model.get_layer(f"encoder_{last}_dropout").output] + [layer.output for layer in bridges]
    return keras.Model(model.get_layer("source_ids").output, outputs, name="encoder")
