"""Text classification data in the class-folder layout: `ROOT/{train,test}/<class>/*.txt`.

This is the layout of IMDB's aclImdb folder, and the one users bring their own
data in: any number of classes, one text file per example. The train folder is
split into train and validation by a fixed seed; the test folder is never touched
until the final evaluation.
"""

import dataclasses
from pathlib import Path

from toolkit.errors import ToolkitError

DEFAULT_SEED = 1337


@dataclasses.dataclass(frozen=True)
class TextSplits:
    """Unbatched `tf.data` datasets of (text, integer label), and the class names in label order."""

    train: object
    validation: object
    test: object  # None when the data has no test folder
    class_names: tuple


def class_folders(folder, class_names=None):
    """The class names under `folder`, validated: at least two classes, none of them empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ToolkitError(f"no such folder: {folder}")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        class_names = found
    missing = [c for c in class_names if c not in found]
    if missing:
        raise ToolkitError(f"{folder} has no class folder {missing[0]!r} (found: {', '.join(found) or 'none'})")
    if not class_names:
        raise ToolkitError(f"{folder} has no class folders: expected {folder}/<class>/*.txt")
    if len(class_names) < 2:
        raise ToolkitError(f"{folder} has one class only ({class_names[0]!r}): a classifier needs at least two")
    for name in class_names:
        if not any(p.suffix == ".txt" for p in (folder / name).iterdir()):
            raise ToolkitError(f"class folder {folder / name} has no .txt files")
    return tuple(class_names)


def load_text_folders(root, class_names=None, validation_split=0.1, seed=DEFAULT_SEED):
    """Reads `root/train/<class>/*.txt` (and `root/test/...` if present) into `TextSplits`.

    Args:
        root: the folder holding `train/` and optionally `test/`.
        class_names: the classes to read, in label order; default: every sub-folder of
            `train/`, sorted. (IMDB passes `("neg", "pos")` to skip its `unsup` folder.)
        validation_split: the fraction of `train/` held out for validation.
        seed: fixes which files land in validation.
    """
    import keras

    root = Path(root)
    train_dir, test_dir = root / "train", root / "test"
    if not train_dir.is_dir():
        raise ToolkitError(f"{root} has no train/ folder: expected {root}/train/<class>/*.txt")
    if not 0.0 < validation_split < 1.0:
        raise ToolkitError(f"validation_split must be between 0 and 1. Received: {validation_split!r}")
    class_names = class_folders(train_dir, class_names)

    def read(folder, **kwargs):
        return keras.utils.text_dataset_from_directory(
            folder, labels="inferred", label_mode="int", class_names=list(class_names),
            batch_size=None, seed=seed, verbose=False, **kwargs,
        )

    train, validation = read(train_dir, validation_split=validation_split, subset="both", shuffle=True)
    test = None
    if test_dir.is_dir():
        class_folders(test_dir, class_names)
        test = read(test_dir, shuffle=False)
    return TextSplits(train=train, validation=validation, test=test, class_names=class_names)
