"""Reading the files users hand to the command line, with one clear error per bad file."""

import io
import sys
from pathlib import Path

from toolkit.errors import ToolkitError

MAX_TEXT_BYTES = 1_000_000
MAX_LINE_BYTES = 100_000  # a sentence, not a document


def _size(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} bytes"


def open_file(path, stdin=None):
    """`path` opened for reading bytes (`-` is standard input), refusing folders and missing files."""
    if str(path) == "-":
        return stdin or sys.stdin.buffer
    if "\x00" in str(path):
        raise ToolkitError(f"{str(path)!r}: not a file name (it holds a NUL byte)")
    path = Path(path)
    if path.is_dir():
        raise ToolkitError(f"{path}: is a folder, not a file")
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ToolkitError(f"{path}: no such file") from None
    except OSError as e:
        raise ToolkitError(f"{path}: cannot read: {e.strerror or e}") from None


def read_bytes(path, max_bytes, stdin=None):
    """The bytes of `path` (`-` is standard input), refusing folders, missing and oversized files."""
    f = open_file(path, stdin)
    try:
        data = f.read(max_bytes + 1)
    except OSError as e:
        raise ToolkitError(f"{path}: cannot read: {e.strerror or e}") from None
    finally:
        if f is not (stdin or sys.stdin.buffer):
            f.close()
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


def read_lines(path, stdin=None, max_line_bytes=MAX_LINE_BYTES):
    """(line number, text) for each line of `path` (`-`: standard input), read as it goes.

    Memory holds one line at a time, whatever the file's size. A missing, empty or binary
    file (a NUL byte in its first 8 KB) raises ToolkitError before anything is yielded; a
    later line that is not UTF-8 text or is over `max_line_bytes` comes as a ToolkitError in
    its text's place, so the caller can report it and go on.
    """
    f = open_file(path, stdin)
    standard_input = f is (stdin or sys.stdin.buffer)
    if not hasattr(f, "peek"):  # a plain byte stream (a test's standard input)
        f = io.BufferedReader(f)
    try:
        head = f.peek(8192)[:8192]
        if b"\x00" in head:
            raise ToolkitError(f"{path}: binary file, not text")
        number = 0
        while True:
            line = f.readline(max_line_bytes + 1)
            if not line:
                break
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                while (rest := f.readline(1 << 16)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the overlong line
                yield number, ToolkitError(f"{path}: line {number} is over {_size(max_line_bytes)}")
                continue
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]  # a byte-order mark
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield number, ToolkitError(f"{path}: line {number} is not UTF-8 text (invalid byte at column {e.start + 1})")
                continue
            if "\x00" in text:
                yield number, ToolkitError(f"{path}: line {number} is binary, not text")
                continue
            yield number, text.rstrip("\r\n")
        if number == 0:
            raise ToolkitError(f"{path}: empty file")
    finally:
        if not standard_input:
            f.close()
