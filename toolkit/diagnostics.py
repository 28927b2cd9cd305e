"""Vanishing and exploding gradients, measured on real reviews (`toolkit diagnose gradients`).

Backpropagation through time multiplies one Jacobian per step: the sensitivity of the last
hidden state to the input t steps back is

    dh_T/dx_t = (prod_{k=t+1..T} dh_k/dh_{k-1}) dh_t/dx_t

For a SimpleRNN every factor is W_hh^T diag(f'(.)) and the product shrinks (or grows)
geometrically with T - t. The LSTM's cell state (c_t = f_t * c_{t-1} + ...) and the GRU's
interpolation (h_t = (1 - z_t) * h_{t-1} + ...) add a path whose factor is a gate near 1,
so the sensitivity is carried much further. Here that is measured, not drawn: the
Frobenius norm of dh_T/dx_t (and the norm of dL/dx_t, the loss's gradient at the input
embedding of step t) for t = 1..T, averaged over real IMDB reviews cut to T tokens.
"""

import sys
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError

CELLS = ("simple_rnn", "lstm", "gru")


def load_reviews(preprocessor, length, count, data_dir=None, seed=0):
    """`count` IMDB training reviews with at least `length` tokens, cut to their first `length`: (ids, labels)."""
    from toolkit.data import imdb

    if length < 1:
        raise ToolkitError(f"--length must be at least 1 token. Received: {length}")
    if count < 1:
        raise ToolkitError(f"--reviews must be at least 1. Received: {count}")
    root = imdb.find_root(data_dir)
    texts, labels = _read_reviews(root / "train")
    ids = preprocessor.vectorizer(np.array(texts, dtype=object)).numpy()
    lengths = (ids != 0).sum(axis=1)
    long_enough = np.flatnonzero(lengths >= length)
    if len(long_enough) == 0:
        raise ToolkitError(f"no review has {length} tokens (the longest of the {len(texts)} has {lengths.max()}); "
                           "choose a smaller --length")
    if len(long_enough) < count:
        print(f"Only {len(long_enough)} reviews have {length} tokens; using them all.", file=sys.stderr)
    chosen = np.random.default_rng(seed).permutation(long_enough)[:count]
    return ids[chosen, :length].astype("int32"), np.array(labels)[chosen].astype("float32")


def _read_reviews(folder):
    texts, labels = [], []
    for label, name in enumerate(("neg", "pos")):
        for path in sorted((folder / name).glob("*.txt")):
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
            labels.append(label)
    if not texts:
        raise ToolkitError(f"no reviews in {folder}/neg or {folder}/pos")
    return texts, labels


def sensitivity(model, ids, labels, batch_size=16):
    """Mean over reviews of ||dh_T/dx_t||_F and ||dL/dx_t||_2, for t = 1..T: two arrays of length T.

    `model` is a text classifier of `models.text_classifier` (single output); h_T is its first
    recurrent layer's state after the last step (the forward direction if bidirectional).
    """
    import tensorflow as tf

    embedding = model.get_layer("embedding")
    if "rnn_1" not in {layer.name for layer in model.layers}:
        raise ToolkitError("the model has no recurrent layer (--layers 0): there is no state to follow through time")
    rnn = model.get_layer("rnn_1")
    forward = getattr(rnn, "forward_layer", rnn)
    after = model.layers[model.layers.index(embedding) + 1:]
    if any(layer.name in ("bigram_ids", "bigram_embedding", "word_and_bigram") for layer in after):
        raise ToolkitError("models with bigram embeddings are not supported: their input is not one vector per step")
    hidden_norms, loss_norms = [], []
    for start in range(0, len(ids), batch_size):
        x = embedding(ids[start:start + batch_size])
        y = labels[start:start + batch_size]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            states = forward(x, training=False)
            last = states[:, -1] if forward.return_sequences else states
            outputs = x
            for layer in after:
                outputs = layer(outputs, training=False)
            loss = tf.reduce_sum(tf.keras.losses.binary_crossentropy(y[:, None], outputs))
        jacobian = tape.batch_jacobian(last, x)  # [batch, units, T, E]
        hidden_norms.append(tf.sqrt(tf.reduce_sum(tf.square(jacobian), axis=[1, 3])).numpy())
        loss_norms.append(tf.norm(tape.gradient(loss, x), axis=-1).numpy())
        del tape
    return np.concatenate(hidden_norms).mean(axis=0), np.concatenate(loss_norms).mean(axis=0)


def diagnose(cells=CELLS, activation="tanh", length=200, reviews=32, units=64, embedding_dim=128, run_dirs=(),
             data_dir=None, seed=0, recurrent_init="orthogonal"):
    """Sensitivity curves for freshly initialised models of each cell, or for trained runs (`run_dirs`)."""
    import keras

    import toolkit.models.text_classifier  # noqa: F401  (custom layers for loading)
    from toolkit.models.text_classifier import build_text_classifier
    from toolkit.preprocessing.text import TextPreprocessor
    from toolkit.tasks import text_classification
    from toolkit.training import BEST_MODEL, read_run

    if length < 1:
        raise ToolkitError(f"--length must be at least 1 token. Received: {length}")
    curves = {}
    for run_dir in run_dirs:
        try:
            config = read_run(run_dir, text_classification.KIND)
        except ToolkitError:
            config = {}
        if config.get("task") != "binary":
            raise ToolkitError(f"{run_dir} is not a run of a two-class text classifier (toolkit train sentiment)")
        ids, labels = load_reviews(TextPreprocessor.load(run_dir), length, reviews, data_dir, seed)
        model = keras.saving.load_model(Path(run_dir) / BEST_MODEL, compile=False)
        train = config["train"]
        name = train["cell"] + (f" ({train['activation']})" if train["cell"] == "simple_rnn" else "")
        name += f", {train['recurrent_init']} init" if train.get("recurrent_init", "orthogonal") != "orthogonal" else ""
        curves[f"{name}, trained: {Path(run_dir).name}"] = sensitivity(model, ids, labels)
    if not run_dirs:
        import tensorflow as tf

        from toolkit.data import imdb

        preprocessor = TextPreprocessor(vocabulary_size=20000, max_length=length)
        texts, _ = _read_reviews(imdb.find_root(data_dir) / "train")
        preprocessor.adapt(tf.data.Dataset.from_tensor_slices(texts))
        ids, labels = load_reviews(preprocessor, length, reviews, data_dir, seed)
        for cell in cells:
            keras.utils.set_random_seed(seed)
            model = build_text_classifier(len(preprocessor.vocabulary), cell=cell, units=units,
                                          embedding_dim=embedding_dim, recurrent_init=recurrent_init,
                                          activation=activation if cell == "simple_rnn" else "tanh")
            name = f"{cell} ({activation})" if cell == "simple_rnn" else cell
            name += f", {recurrent_init} init" if recurrent_init != "orthogonal" else ""
            curves[name] = sensitivity(model, ids, labels)
    return {"length": length, "reviews": int(len(ids)),
            "models": "trained runs" if run_dirs else f"untrained: {recurrent_init} recurrent initialisation, "
                                                      f"seed {seed}, {units} units, embedding {embedding_dim}",
            "curves": {name: {"hidden": hidden.tolist(), "loss": loss.tolist()} for name, (hidden, loss) in curves.items()}}


def table(report, distances=(0, 1, 2, 5, 10, 20, 50, 100, 150, 199)):
    """Rows: steps back from the end (T - t); columns: ||dh_T/dx_t|| per curve, relative to t = T."""
    length = report["length"]
    distances = [d for d in distances if d < length]
    names = list(report["curves"])
    lines = ["steps back (T-t) | " + " | ".join(f"{n}: dh_T/dx_t" for n in names) + " | "
             + " | ".join(f"{n}: dL/dx_t" for n in names)]
    for d in distances:
        hidden = [report["curves"][n]["hidden"][length - 1 - d] for n in names]
        loss = [report["curves"][n]["loss"][length - 1 - d] for n in names]
        lines.append(f"{d:>16} | " + " | ".join(f"{v:.3e}" for v in hidden) + " | " + " | ".join(f"{v:.3e}" for v in loss))
    return "\n".join(lines)


def plot(report, path):
    """One PNG: ||dh_T/dx_t|| (left) and ||dL/dx_t|| (right) against T - t, log scale, a curve per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolkit.atomic import atomic_path

    length = report["length"]
    back = np.arange(length)[::-1]  # T - t for t = 1..T
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, curve in report["curves"].items():
        for ax, key in zip(axes, ("hidden", "loss")):
            values = np.maximum(np.array(curve[key]), 1e-30)
            ax.semilogy(back, values, label=name)
    axes[0].set_title(r"$\|\partial h_T / \partial x_t\|$")
    axes[1].set_title(r"$\|\partial L / \partial x_t\|$")
    for ax in axes:
        ax.set_xlabel("steps back from the last token (T - t)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"Gradient through time, mean over {report['reviews']} IMDB reviews of {length} tokens "
                 f"({report['models']})", fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
