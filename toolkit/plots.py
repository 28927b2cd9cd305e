"""Figures written as PNG files: pure functions of numbers and names, drawn with matplotlib's Agg backend.

Each takes what it draws and the path to write, and writes it atomically (`atomic_path`), so
a figure that a command names is either complete or absent.
"""

import textwrap

import numpy as np

from toolkit.atomic import atomic_path
from toolkit.errors import ToolkitError

MAX_NUMBERED = 30  # classes up to which every cell shows its count; beyond, colour alone


def plot_confusion_matrix(matrix, class_names, path):
    """The confusion matrix as a PNG: rows = true class, columns = predicted, accuracy in the title.

    Cells show their counts, coloured by their share of the row (the true class), so a rare
    class's mistakes are as visible as a common one's and the diagonal reads as per-class
    recall. The figure grows with the classes up to a cap; past `MAX_NUMBERED` classes the
    counts would not fit a cell and only the colour is drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.int64)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"a confusion matrix of {n} classes must be {n}x{n}. Received: shape={counts.shape}")
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    total = int(counts.sum())
    side = min(3.0 + 0.45 * n, 24.0)  # inches: ~0.45 in a cell for a few classes, ~0.2 in for 100
    label_size = 10 if n <= 20 else max(6, int(200 / n))

    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    # A colour bar 0.35 in wide and as tall as most of the matrix, whatever the figure's size.
    fig.colorbar(image, ax=ax, fraction=0.35 / side, aspect=2.3 * side, pad=0.3 / side, label="share of the true class")
    _name_classes(ax, class_names, size=label_size)
    accuracy = np.trace(counts) / max(total, 1)
    ax.set_title(f"accuracy {accuracy:.2%} on {total:,} examples")
    if n <= MAX_NUMBERED:
        _write_counts(ax, counts, shares, size=max(6, min(10, int(220 / max(n, 1)))))
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    except OSError as e:  # a folder that cannot be written, a full disk
        raise ToolkitError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def _write_counts(ax, counts, shares, size):
    """Each cell's count, white on the dark cells so it stays readable."""
    for (row, column), count in np.ndenumerate(counts):
        color = "white" if shares[row, column] > 0.5 else "black"
        ax.text(column, row, f"{count:,}", ha="center", va="center", fontsize=size, color=color)


def _name_classes(ax, class_names, size):
    """Class names on both axes; the predicted ones slanted when long, upright when there are many."""
    n = len(class_names)
    ax.set_xticks(range(n), class_names, fontsize=size)
    ax.set_yticks(range(n), class_names, fontsize=size)
    if n > MAX_NUMBERED:
        ax.tick_params(axis="x", labelrotation=90)
    elif max((len(str(name)) for name in class_names), default=0) > 3:
        for label in ax.get_xticklabels():
            label.set(rotation=45, ha="right", rotation_mode="anchor")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")


def plot_caption_attention(pixels, result, path, columns=5):
    """Where a captioner looked for each word it wrote: the image as the model saw it, then one
    panel a word with that word's attention over the feature map laid over the image (the
    figure of Show, Attend and Tell). `result` is an answer of `Captioner.caption(...,
    attention=True)`: its `caption`, `tokens` and `attention` (per word, rows x columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result["tokens"]:
        raise ToolkitError(f"nothing to draw into {path}: the caption has no words")
    image = np.clip(np.asarray(pixels), 0, 255).astype(np.uint8)
    height, width = image.shape[:2]
    panels = 1 + len(result["tokens"])
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 3.0 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("(image)", fontsize=11)
    for ax, word, weights in zip(axes.flat[1:], result["tokens"], result["attention"]):
        weights = np.asarray(weights, dtype=np.float32)
        ax.imshow(image)
        # Each cell of the feature map covers its share of the image: stretched over it, smoothed.
        ax.imshow(weights / max(float(weights.max()), 1e-9), cmap="gray", alpha=0.65, vmin=0.0, vmax=1.0,
                  extent=(0, width, height, 0), interpolation="bilinear")
        ax.set_title(word, fontsize=12)
    fig.suptitle(result["caption"], fontsize=13, fontweight="bold")
    fig.tight_layout(h_pad=1.2)
    _save(fig, path, plt)


def plot_translation_attention(result, path):
    """A translation's attention as a heatmap: one row per target token, one column per source
    token, each row the weights that target token's step gave the source (it sums to 1).
    `result` is an answer of `Translator.translate(..., attention=True)`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source, target = result["source_tokens"], result["target_tokens"]
    if not source or not target:
        raise ToolkitError(f"nothing to draw into {path}: the sentence has no tokens to translate")
    weights = np.asarray(result["attention"], dtype=np.float32).reshape(len(target), len(source))
    fig, ax = plt.subplots(figsize=(2.0 + 0.42 * max(len(source), 4), 1.6 + 0.36 * max(len(target), 4)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="attention")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(target)), target)
    ax.set_xlabel("source tokens")
    ax.set_ylabel("target tokens")
    ax.set_title(textwrap.fill(result["translation"], 60), fontsize=11)
    fig.tight_layout()
    _save(fig, path, plt)


def _save(fig, path, plt, dpi=100):
    """Writes `fig` to `path` atomically and closes it; ToolkitError if it cannot be written."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    except OSError as e:  # a folder that cannot be written, a full disk
        raise ToolkitError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
