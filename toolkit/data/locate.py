"""Where data sets live: an explicit folder, `$TOOLKIT_DATA_DIR`, or the download cache."""

import os
from pathlib import Path

DATA_DIR_ENV = "TOOLKIT_DATA_DIR"
CACHE_DIR_ENV = "TOOLKIT_CACHE_DIR"


def cache_dir():
    """The folder downloads and extracted archives go to (`$TOOLKIT_CACHE_DIR`, default ~/.cache/toolkit)."""
    root = os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "toolkit"
    return Path(root).expanduser()


def local_copy(dataset, data_dir=None):
    """The local copy of `dataset` to read, or None when it must be downloaded.

    `data_dir` (a `--data-dir` option) wins; otherwise `$TOOLKIT_DATA_DIR/<dataset>`,
    where `$TOOLKIT_DATA_DIR` holds one folder per data set (as `../shared/data` does).
    """
    if data_dir:
        return Path(data_dir).expanduser()
    root = os.environ.get(DATA_DIR_ENV)
    if root:
        return Path(root).expanduser() / dataset
    return None
