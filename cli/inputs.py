"""The inputs the answering commands read: files, folders, globs and `-`, found as they are needed."""

import glob
import itertools
import os

from toolkit.errors import ToolkitError

CHUNK = 256  # image files decoded and answered at a time: memory stays bounded for any number of files


def expand(patterns, suffixes, stdin=None):
    """The paths that arguments name, in order, found as they are needed.

    A folder gives its files ending in one of `suffixes` (any case; not hidden files, not
    subfolders), sorted by name; a glob is expanded, sorted (unless a file has that very name);
    `-` gives the paths on the lines of `stdin`, or stays `-` when `stdin` is None (a command
    for which `-` is itself an input). A folder that cannot be listed or holds no such file
    comes as a ToolkitError in place of its files, so the caller can report it and go on.
    """
    for pattern in patterns:
        if pattern == "-" and stdin is not None:
            yield from (line.strip() for line in stdin if line.strip())
        elif any(c in pattern for c in "*?[") and not os.path.exists(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            yield from matches or [pattern]
        elif os.path.isdir(pattern):
            try:  # only the names are kept (tens of bytes each): a folder can only be sorted once listed
                names = sorted(folder_files(pattern, suffixes))
            except OSError as e:
                yield ToolkitError(f"{pattern}: cannot list the folder: {e.strerror or e}")
                continue
            if not names:
                yield ToolkitError(f"{pattern}: is a folder with no {', '.join(suffixes)} files in it")
            yield from (os.path.join(pattern, name) for name in names)
        else:
            yield pattern


def count_paths(patterns, suffixes, stdin=None):
    """How many items `expand` gives for the same arguments, counted without keeping them; None
    when some are paths read from `stdin` (unknown until read)."""
    if stdin is not None and "-" in patterns:
        return None
    total = 0
    for pattern in patterns:
        if any(c in pattern for c in "*?[") and not os.path.exists(pattern):
            total += sum(1 for _ in glob.iglob(pattern, recursive=True)) or 1
        elif os.path.isdir(pattern):
            try:
                total += sum(1 for _ in folder_files(pattern, suffixes)) or 1
            except OSError:
                total += 1
        else:
            total += 1
    return total


def folder_files(folder, suffixes):
    """The names of the files in `folder` that end in one of `suffixes` (any case), hidden ones left out, as
    the folder lists them (unsorted); raises OSError when it cannot be listed."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.lower().endswith(suffixes) and not entry.name.startswith(".") and entry.is_file():
                yield entry.name


def answered_chunks(paths, answer):
    """Lists of (path, answer) for up to CHUNK paths at a time, in order, taking paths from `paths`
    only as each list is asked for; `answer(paths) -> [result]` is the Python API's call.

    A ToolkitError that `expand` gave in place of a folder's files comes with `{"error": ...}`
    as its answer, like a file the API could not read, so the caller reports both alike.
    """
    paths = iter(paths)
    while chunk := list(itertools.islice(paths, CHUNK)):
        readable = [path for path in chunk if not isinstance(path, ToolkitError)]
        answers = iter(answer(readable) if readable else [])
        yield [(path, {"error": str(path)} if isinstance(path, ToolkitError) else next(answers)) for path in chunk]
