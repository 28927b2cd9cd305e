"""Downloading and unpacking archives: verified, bounded, and never half-written.

An archive can claim anything in its headers and inflate a thousandfold (a 1 MB tarball can
hold 1 GB of zeros), so what comes out of one is counted as it is written or read, and
refused past a limit, with one line that names the limit and the environment variable that
raises it:

- `TOOLKIT_MAX_EXTRACT_BYTES` (default 512 MiB): the bytes of file contents a tarball may unpack
  to. The largest that a loader extracts, IMDB's official `aclImdb_v1.tar.gz`, holds roughly 230 MB
  (the copy in ../shared/data, without its unlabelled reviews and bag-of-words files, 67 MB; the
  ~490 MB it takes on disk are mostly the 4 KB blocks of 100,000 small files); CIFAR-10's python
  batches 180 MB. (Flickr8k's 1 GB zip of images is read in place, an image at a time, never extracted.)
- `TOOLKIT_MAX_EXTRACT_MEMBERS` (default 250,000): the files and folders of one tarball
  (IMDB's official tarball has about 100,000; CIFAR-10 as JPEG files 60,000; each costs ~0.7 KB
  of memory while the tarball is read).
- `TOOLKIT_MAX_MEMBER_BYTES` (default 64 MiB): one file read out of an archive into memory: a
  member of a zip (Flickr8k's captions are 3.4 MB; an image, tens of KB) or a gzipped text file
  (Multi30k's largest is 2.1 MB).

A tarball is extracted into a temporary folder beside its target, renamed into place when
complete. The folder is locked while it is written; one left behind by a killed process (its
lock gone with it) is removed by the next extraction into the same place. Each copy records
which tarball it came from, so that when that tarball changes and is extracted again (under a
new cache key), the copy of its old version is removed.
"""

import fcntl
import hashlib
import io
import os
import secrets
import shutil
import sys
import tarfile
import urllib.request
import zlib
from pathlib import Path

from toolkit.atomic import atomic_path, write_text
from toolkit.errors import ToolkitError
from toolkit.progress import Progress

MAX_EXTRACT_BYTES = "TOOLKIT_MAX_EXTRACT_BYTES"
MAX_EXTRACT_MEMBERS = "TOOLKIT_MAX_EXTRACT_MEMBERS"
MAX_MEMBER_BYTES = "TOOLKIT_MAX_MEMBER_BYTES"
DEFAULTS = {MAX_EXTRACT_BYTES: 512 << 20, MAX_EXTRACT_MEMBERS: 250_000, MAX_MEMBER_BYTES: 64 << 20}

_CHUNK = 1 << 20
_TEMPORARY = ".extracting"  # suffix of the folders being extracted into
_SOURCE = ".source"  # suffix of the file beside a copy that names its tarball


def limit(variable, value=None):
    """`value` if given, else the environment variable `variable`, else its default (a positive integer)."""
    if value is not None:
        return int(value)
    text = os.environ.get(variable, "").strip()
    if not text:
        return DEFAULTS[variable]
    try:
        number = int(text)
    except ValueError:
        try:
            number = int(float(text))  # 5e8
        except (ValueError, OverflowError):
            number = 0
    if number < 1:
        raise ToolkitError(f"{variable} must be a positive number of {'members' if 'MEMBERS' in variable else 'bytes'}. "
                           f"Received: {text!r}")
    return number


def download(url, dest, sha256=None, timeout=60):
    """Downloads `url` to `dest` unless it is there already; checks its sha256 if given.

    The bytes go to a temporary file that is renamed onto `dest` only once complete and
    verified, so an interrupted download leaves nothing behind that looks finished. The MiB
    received are drawn as a bar on stderr when it is a terminal (IMDB's tarball takes minutes),
    never on stdout, which may carry `--json` answers.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    print(f"Downloading {url} -> {dest}", file=sys.stderr)
    try:
        with atomic_path(dest) as tmp:
            digest = hashlib.sha256()
            with (urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out,
                  Progress("MiB", total=lambda: _length(response), unit=1 << 20) as progress):
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                    progress.advance(len(chunk))
            if sha256 and digest.hexdigest() != sha256:
                raise ToolkitError(
                    f"download of {url} is corrupt: sha256 {digest.hexdigest()}, expected {sha256}"
                )
    except OSError as e:  # URLError and socket timeouts are OSErrors
        raise ToolkitError(f"cannot download {url}: {e}") from None
    return dest


def _length(response):
    """The bytes a response announces (`Content-Length`), or None when it does not say."""
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


# === Tarballs ===

def extract_tarball(archive, target, *, max_bytes=None, max_members=None):
    """Extracts the tarball `archive` into the folder `target` (once; later calls reuse it).

    Members are streamed one by one and checked before they are written: absolute paths, `..`,
    links and device files are refused, and so is a tarball whose members add up to more than
    `max_bytes` bytes (counted as they are written) or `max_members` entries (defaults: the
    environment variables in the module docstring). Nothing appears at `target` unless all of
    it could be extracted.
    """
    archive, target = Path(archive), Path(target)
    if target.is_dir():
        return target
    max_bytes, max_members = limit(MAX_EXTRACT_BYTES, max_bytes), limit(MAX_EXTRACT_MEMBERS, max_members)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target.parent)
    folder, lock = _claim_folder(target)
    try:
        with tarfile.open(archive, "r|*") as tar:  # a stream: read once, front to back
            _unpack(tar, folder, archive, target, max_bytes, max_members)
        write_text(_source_file(target), str(archive.resolve()))
        os.sync()  # the files reach the disk before the rename does: a power cut leaves no empty "complete" copy
        try:
            os.replace(folder, target)
        except OSError:
            if not target.is_dir():
                raise  # otherwise another process finished the same extraction first: use its copy
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ToolkitError(f"cannot read archive {archive}: {e}") from None
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        if lock is not None:
            os.close(lock)
    _remove_older_copies(target, archive)
    return target


def _unpack(tar, folder, archive, target, max_bytes, max_members):
    written = 0
    for count, member in enumerate(tar, 1):
        if count > max_members:
            raise ToolkitError(f"refusing to extract {archive}: it holds more than {max_members:,} files and folders "
                               f"(the limit; set {MAX_EXTRACT_MEMBERS} to allow more)")
        dest = _member_path(member, folder, target)
        if member.isdir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if written + member.size > max_bytes:  # what the header says: refused before a byte is written
            raise _too_big(archive, max_bytes)
        source = tar.extractfile(member)
        with open(dest, "wb") as out:  # what it holds: counted, whatever the header said
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise _too_big(archive, max_bytes)
                out.write(chunk)


def _too_big(archive, max_bytes):
    return ToolkitError(f"refusing to extract {archive}: it unpacks to more than {max_bytes:,} bytes "
                        f"({_size(max_bytes)}, the limit; set {MAX_EXTRACT_BYTES} to a larger number of bytes to allow it)")


def _member_path(member, folder, target):
    """Where `member` goes inside `folder`; refuses links, devices and paths that would leave it."""
    if not (member.isfile() or member.isdir()):
        raise ToolkitError(f"refusing to extract {member.name!r}: only files and folders are allowed")
    root = folder.resolve()
    dest = (root / member.name).resolve()
    if dest != root and root not in dest.parents:
        raise ToolkitError(f"refusing to extract {member.name!r}: it would land outside {target}")
    return dest


# === Leftovers: killed extractions, copies of older versions ===

def _claim_folder(target):
    """(folder, lock): a new empty folder beside `target`, and the descriptor that holds its lock.

    The lock (`flock`, released by the kernel when the process ends, however it ends) tells
    `remove_abandoned` that the folder is in use. A folder removed as abandoned before it could be
    locked is noticed (it has no links left) and another one made. The lock is None on a file
    system without locks; `remove_abandoned` then leaves the folder alone.
    """
    while True:
        folder = target.parent / f".{target.name}.{secrets.token_hex(4)}{_TEMPORARY}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        try:
            fd = os.open(folder, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # being removed as abandoned
            os.close(fd)
            continue
        except OSError:  # a file system without locks
            os.close(fd)
            return folder, None
        if os.fstat(fd).st_nlink == 0:  # removed as abandoned before it was locked
            os.close(fd)
            continue
        return folder, fd


def remove_abandoned(parent):
    """Removes the temporary folders in `parent` of extractions that were killed (nobody holds their lock)."""
    for path in Path(parent).glob(f".*{_TEMPORARY}"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # an extraction is writing it (or this file system has no locks)
        else:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _source_file(target):
    return target.parent / f".{target.name}{_SOURCE}"


def _remove_older_copies(target, archive):
    """Removes the other copies in `target`'s folder of the same tarball path (extracted from older versions)."""
    source = str(archive.resolve())
    for record in target.parent.glob(f".*{_SOURCE}"):
        copy = target.parent / record.name[1:-len(_SOURCE)]
        if copy == target:
            continue
        try:
            if record.read_text(encoding="utf-8") != source:
                continue
            if copy.is_dir():  # moved first, so no reader finds half of it; if killed, removed as abandoned
                trash, lock = _claim_folder(copy)
                try:
                    os.replace(copy, trash / copy.name)
                    shutil.rmtree(trash, ignore_errors=True)
                finally:
                    if lock is not None:
                        os.close(lock)
            record.unlink()
        except OSError:
            continue  # another process removed it meanwhile
    return target


# === Reading members into memory ===

class _Capped(io.RawIOBase):
    """A binary stream that refuses to yield more than `max_bytes` bytes of `stream`."""

    def __init__(self, stream, max_bytes, what):
        super().__init__()
        self.stream, self.max_bytes, self.what, self.count = stream, max_bytes, what, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self.stream.readinto(buffer)
        self.count += n or 0
        if self.count > self.max_bytes:
            raise ToolkitError(f"refusing to read {self.what}: it holds more than {self.max_bytes:,} bytes "
                               f"({_size(self.max_bytes)}, the limit; set {MAX_MEMBER_BYTES} to allow more)")
        return n

    def close(self):
        self.stream.close()
        super().close()


def capped(stream, what, max_bytes=None):
    """`stream` (binary, e.g. a zip member or a `gzip.open` file) read through a cap on its bytes.

    Wrap it in `io.TextIOWrapper` to read lines: nothing past `max_bytes` (default:
    `$TOOLKIT_MAX_MEMBER_BYTES`) is ever decompressed.
    """
    return io.BufferedReader(_Capped(stream, limit(MAX_MEMBER_BYTES, max_bytes), what), _CHUNK)


def read_member(zip_file, name, max_bytes=None):
    """The bytes of member `name` of the open `zipfile.ZipFile`, refused past `max_bytes` (KeyError if absent)."""
    max_bytes = limit(MAX_MEMBER_BYTES, max_bytes)
    what = f"{name} in {zip_file.filename}"
    if zip_file.getinfo(name).file_size > max_bytes:  # the header's claim, checked first; the bytes are counted too
        raise ToolkitError(f"refusing to read {what}: it holds more than {max_bytes:,} bytes "
                           f"({_size(max_bytes)}, the limit; set {MAX_MEMBER_BYTES} to allow more)")
    with capped(zip_file.open(name), what, max_bytes) as stream:
        return stream.read()


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
