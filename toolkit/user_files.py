"""Reading the files users hand to the command line, with one clear error per bad file."""

import sys
from pathlib import Path

from toolkit.errors import ToolkitError

MAX_TEXT_BYTES = 1_000_000


def _size(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} bytes"


def read_bytes(path, max_bytes, stdin=None):
    """The bytes of `path` (`-` is standard input), refusing folders, missing and oversized files."""
    if str(path) == "-":
        data = (stdin or sys.stdin.buffer).read(max_bytes + 1)
    else:
        path = Path(path)
        if path.is_dir():
            raise ToolkitError(f"{path}: is a folder, not a file")
        try:
            with open(path, "rb") as f:
                data = f.read(max_bytes + 1)
        except FileNotFoundError:
            raise ToolkitError(f"{path}: no such file") from None
        except OSError as e:
            raise ToolkitError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise ToolkitError(f"{path}: too large (over {_size(max_bytes)})")
    if not data:
        raise ToolkitError(f"{path}: empty file")
    return data


def read_text(path, max_bytes=MAX_TEXT_BYTES, stdin=None):
    """The UTF-8 text of `path`, refusing binary files, other encodings and blank files."""
    data = read_bytes(path, max_bytes, stdin)
    if b"\x00" in data:
        raise ToolkitError(f"{path}: binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ToolkitError(f"{path}: not UTF-8 text (invalid byte at offset {e.start})") from None
    if not text.strip():
        raise ToolkitError(f"{path}: no text in it, only white space")
    return text
