"""Downloading and unpacking archives: verified, and never half-written."""

import hashlib
import sys
import tarfile
import urllib.request
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.atomic import atomic_path

_CHUNK = 1 << 20


def download(url, dest, sha256=None, timeout=60):
    """Downloads `url` to `dest` unless it is there already; checks its sha256 if given.

    The bytes go to a temporary file that is renamed onto `dest` only once complete and
    verified, so an interrupted download leaves nothing behind that looks finished.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    print(f"Downloading {url} -> {dest}", file=sys.stderr)
    try:
        with atomic_path(dest) as tmp:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if sha256 and digest.hexdigest() != sha256:
                raise ToolkitError(
                    f"download of {url} is corrupt: sha256 {digest.hexdigest()}, expected {sha256}"
                )
    except OSError as e:  # URLError and socket timeouts are OSErrors
        raise ToolkitError(f"cannot download {url}: {e}") from None
    return dest


def extract_tarball(archive, target):
    """Extracts the tarball `archive` into the folder `target` (once; later calls reuse it).

    Every member is checked before anything is written: absolute paths, `..` and links
    that would put a file outside `target`, and device files, are refused.
    """
    archive, target = Path(archive), Path(target)
    if target.is_dir():
        return target
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, target)
            with atomic_path(target) as tmp:
                tmp.mkdir()
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=members, filter="data")
                else:  # Python < 3.10.12: the members were checked above
                    tar.extractall(tmp, members=members)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ToolkitError(f"cannot read archive {archive}: {e}") from None
    return target


def _check_member(member, target):
    if not (member.isfile() or member.isdir()):
        raise ToolkitError(f"refusing to extract {member.name!r}: only files and folders are allowed")
    root = target.resolve()
    dest = (root / member.name).resolve()
    if dest != root and root not in dest.parents:
        raise ToolkitError(f"refusing to extract {member.name!r}: it would land outside {target}")
