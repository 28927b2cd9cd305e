"""An image captioner: a CNN's feature map in, a sentence out (one-to-many).

    image -> encoder -> feature map [h, w, C] -> h*w positions -> memory_projection -> memory [h*w, units]
                                               -> mean -> bridge_i (tanh) -> decoder initial states
    caption so far -> AttentionDecoder (attends over the memory) -> logits of the next word

With attention ("bahdanau" or "luong") this is Show, Attend and Tell (Xu et al., 2015): each word
looks at different image regions. With `attention=None` the image reaches the decoder only through
its initial state: Show and Tell (Vinyals et al., 2015).

The training model maps `[image, caption_ids]` -> logits. The image input is the encoder's feature
map when the encoder is frozen (its features are computed once and cached), or the pixels when an
encoder is given here to train end to end (it becomes the nested layer `image_encoder`).
`image_context()` and `AttentionDecoder.from_model()` take a trained model apart for search.
"""

import keras
from keras import ops

from toolkit.models.decoder import AttentionDecoder


def build_captioner(vocabulary_size, *, feature_shape=None, encoder=None, cell="lstm", units=512, embedding_dim=256,
                    decoder_layers=1, attention="bahdanau", dropout=0.0):
    """The training model: `[features or pixels, caption_ids]` -> logits `[batch, T, vocabulary_size]`.

    Give `feature_shape` (h, w, C) of a frozen encoder's cached features, or `encoder`
    (pixels -> feature map) to train it with the decoder.
    """
    if (feature_shape is None) == (encoder is None):
        raise ValueError("give exactly one of feature_shape (cached features) and encoder (end to end)")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
    if encoder is not None:
        image = keras.Input(shape=encoder.input_shape[1:], name="pixels")
        features = encoder(image)
    else:
        image = keras.Input(shape=tuple(feature_shape), name="features")
        features = image
    caption = keras.Input(shape=(None,), dtype="int32", name="caption_ids")

    # === Image: h x w positions to attend over, and the decoder's initial state ===
    h, w, channels = features.shape[1:]
    positions = keras.layers.Reshape((h * w, channels), name="positions")(features)
    summary = keras.layers.GlobalAveragePooling1D(name="image_mean")(positions)
    memory = keras.layers.Dense(units, activation="relu", name="memory_projection")(positions)
    memory = keras.layers.Dropout(dropout, name="memory_dropout")(memory)
    summary = keras.layers.Dropout(dropout, name="image_dropout")(summary)
    decoder = AttentionDecoder.create(vocabulary_size, cell=cell, units=units, embedding_dim=embedding_dim,
                                      num_layers=decoder_layers, attention=attention, dropout=dropout)
    initial_states = decoder.initial_states(summary, units)

    # === Decoder ===
    memory_mask = ops.ones_like(memory[..., 0], dtype="bool")
    logits = decoder.sequence(caption, memory, memory_mask, initial_states)
    return keras.Model([image, caption], logits, name="captioner")


def image_context(model):
    """The image side of a trained captioner: its image input -> [memory, initial states of each decoder layer...]."""
    bridges = sorted((layer for layer in model.layers if layer.name.startswith("bridge_")), key=lambda l: l.name)
    names = {layer.name for layer in model.layers}
    # Without attention the memory is unused (and pruned from the model): the positions stand in.
    memory = model.get_layer("memory_dropout" if "memory_dropout" in names else "positions").output
    outputs = [memory] + [layer.output for layer in bridges]
    return keras.Model(model.inputs[0], outputs, name="image_context")
