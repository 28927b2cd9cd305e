"""Writing files so that a reader never sees half of one: a temporary path, flushed to disk, then a rename.

A temporary path is `.NAME.XXXXXXXX.tmp[SUFFIX]` beside its target; `remove_leftovers` deletes
those that a killed process left behind (call it where a lock says no one else is writing).
"""

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from toolkit.errors import ToolkitError


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`; renames it onto `path` when the block succeeds.

    Works for files and folders. Before the rename, the data and the folder entries are
    flushed to disk (fsync), and after it the parent folder is too, so a power cut leaves
    either the old file or the complete new one, never an empty "complete" one. The
    temporary path is removed if the block fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp = Path(tmp)
    try:
        yield tmp
        sync_tree(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def sync_tree(path):
    """fsync a file, or every file and folder below a folder (the folder itself last)."""
    path = Path(path)
    if path.is_dir():
        for root, folders, files in os.walk(path, topdown=False):
            for name in files:
                _fsync(Path(root) / name)
            _fsync(root)
    elif path.exists():
        _fsync(path)


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the data itself was synced
        pass
    finally:
        os.close(fd)


def remove_leftovers(folder):
    """Deletes the temporary files and folders of `atomic_path` writes that never finished in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".") and ".tmp" in p.name]
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers


@contextlib.contextmanager
def folder_lock(folder, busy_message):
    """Holds an exclusive `flock` on `folder` itself (created if needed) for the block;
    ToolkitError(busy_message) at once if another process holds it.

    Locking the folder, not a file in it, leaves nothing behind, and the lock goes with the
    process: a killed holder leaves nothing to clean either.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ToolkitError(busy_message) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
