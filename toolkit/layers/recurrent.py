"""The cell factory: SimpleRNN, LSTM and GRU layers from one set of options.

Why three cells: backpropagation through time multiplies one Jacobian per step, so a
SimpleRNN's gradient vanishes (or explodes) geometrically with distance. The LSTM's
cell state is updated additively (c_t = f * c_{t-1} + i * g), and the GRU interpolates
(h_t = (1 - z) * h_{t-1} + z * h~), which gives the gradient a path that is not squashed
at every step -- the same idea as ResNet's identity shortcut.
"""

import keras

from toolkit.config import ACTIVATIONS, RECURRENT_INITS

CELLS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}

# Initialisations of the recurrent matrix W_hh, the factor that backpropagation through time
# multiplies once per step. Keras' default is orthogonal (all singular values 1: a linear
# recurrence neither shrinks nor grows the gradient; Saxe et al., 2014). "uniform" is the small
# U(-0.08, 0.08) of early sequence-to-sequence work (Sutskever et al., 2014): singular values well
# below 1, so a SimpleRNN's gradient shrinks geometrically. "identity" is the IRNN's (Le et al., 2015),
# meant for relu SimpleRNNs. The names: `toolkit.config.RECURRENT_INITS`.


def recurrent_initializer(name):
    if name not in RECURRENT_INITS:
        raise ValueError(f"recurrent_init must be one of {list(RECURRENT_INITS)}. Received: recurrent_init={name!r}")
    if name == "uniform":
        return keras.initializers.RandomUniform(-0.08, 0.08)
    if name == "identity":
        return keras.initializers.Identity()
    return name




def recurrent_layer(cell, units, *, return_sequences=False, return_state=False, bidirectional=False, activation="tanh",
                    dropout=0.0, recurrent_dropout=0.0, kernel_regularizer=None, recurrent_init="orthogonal",
                    name=None):
    """One recurrent layer, optionally wrapped in `Bidirectional` (forward and backward outputs concatenated)."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}. Received: cell={cell!r}")
    if activation == "binary_step":
        raise ValueError("activation='binary_step' is not differentiable (its gradient is zero almost "
                         "everywhere), so it cannot be trained by backpropagation; use tanh, relu or sigmoid.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}. Received: activation={activation!r}")
    if activation != "tanh" and cell != "simple_rnn":
        raise ValueError(f"activation applies to cell='simple_rnn' only; {cell} keeps tanh for its candidate "
                         f"state. Received: cell={cell!r}, activation={activation!r}")
    if units < 1:
        raise ValueError(f"units must be positive. Received: units={units!r}")
    layer = CELLS[cell](
        units,
        activation=activation,
        return_sequences=return_sequences,
        return_state=return_state,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        kernel_regularizer=kernel_regularizer,
        recurrent_regularizer=kernel_regularizer,
        recurrent_initializer=recurrent_initializer(recurrent_init),
        name=None if bidirectional else name,
    )
    if bidirectional:
        return keras.layers.Bidirectional(layer, name=name)
    return layer
