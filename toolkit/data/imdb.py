"""The IMDB Large Movie Review Dataset (Maas et al., 2011): 25,000 train and 25,000 test reviews,
and 50,000 more without labels (`train/unsup`) for unsupervised learning (a language model).

Read from a local copy (`--data-dir` or `$TOOLKIT_DATA_DIR/imdb`), which may be the
extracted `aclImdb/` folder, a folder holding it or the tarball, or the tarball itself;
without one, the official tarball is downloaded into the cache and extracted there.
The official tarball holds `train/unsup`; a copy without it may have the unlabelled
reviews in `aclImdb_unsup.tar.gz` beside it (the same `aclImdb/train/unsup` layout).
"""

import hashlib
from pathlib import Path

from toolkit.data import archives, locate
from toolkit.errors import ToolkitError

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
TARBALL = "aclImdb_v1.tar.gz"
UNSUP_TARBALL = "aclImdb_unsup.tar.gz"  # the unlabelled reviews alone, for copies whose train/ lacks unsup/
CLASS_NAMES = ("neg", "pos")
UNLABELLED = "unsup"


def is_imdb(root):
    """Whether `root` is the aclImdb folder itself (it ships `imdb.vocab`), not user data in its layout."""
    return (Path(root) / "imdb.vocab").is_file()


def find_root(data_dir=None):
    """The `aclImdb` folder to read, extracting or downloading the tarball when needed."""
    local = locate.local_copy("imdb", data_dir)
    if local is None:
        tarball = archives.download(URL, locate.cache_dir() / "downloads" / TARBALL, sha256=SHA256)
        return _aclimdb_in(_extract(tarball))
    if not local.exists():
        raise ToolkitError(f"no such file or folder: {local}")
    if local.is_file():
        return _aclimdb_in(_extract(local))
    if (local / "train").is_dir():
        return local
    if (local / "aclImdb").is_dir():
        return local / "aclImdb"
    if (local / TARBALL).is_file():
        return _aclimdb_in(_extract(local / TARBALL))
    raise ToolkitError(f"no IMDB data in {local}: expected aclImdb/, {TARBALL} or train/<class>/ folders")


def unlabelled_reviews(data_dir=None):
    """The paths of the unlabelled reviews, `aclImdb/train/unsup/*.txt`, sorted (never the test split).

    Found in the IMDB folder itself, else in `aclImdb_unsup.tar.gz` beside the local copy
    (extracted into the cache like the labelled tarball).
    """
    root = Path(find_root(data_dir))
    folder = root / "train" / UNLABELLED
    if not folder.is_dir():
        local = locate.local_copy("imdb", data_dir)
        beside = [p / UNSUP_TARBALL for p in (local, local.parent, root.parent) if p is not None]
        tarball = next((p for p in beside if p.is_file()), None)
        if tarball is None:
            raise ToolkitError(f"no unlabelled IMDB reviews: {root}/train has no {UNLABELLED}/ folder and no "
                               f"{UNSUP_TARBALL} lies beside it (the official {TARBALL} holds both)")
        folder = _extract(tarball) / "aclImdb" / "train" / UNLABELLED
        if not folder.is_dir():
            raise ToolkitError(f"{tarball} has no aclImdb/train/{UNLABELLED} folder")
    paths = sorted(folder.glob("*.txt"))
    if not paths:
        raise ToolkitError(f"{folder} holds no .txt reviews")
    return paths


def _extract(tarball):
    """Extracts into the cache, keyed by the tarball's path, size and time, so a changed copy is re-read.

    The copy of the tarball's previous version is then removed; the extraction is bounded by
    `$TOOLKIT_MAX_EXTRACT_BYTES` and `$TOOLKIT_MAX_EXTRACT_MEMBERS` (see `toolkit.data.archives`).
    """
    stat = tarball.stat()
    key = hashlib.sha256(f"{tarball.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return archives.extract_tarball(tarball, locate.cache_dir() / "extracted" / f"{tarball.name}-{key}")


def _aclimdb_in(folder):
    root = Path(folder) / "aclImdb"
    if not (root / "train").is_dir():
        raise ToolkitError(f"the IMDB archive has no aclImdb/train folder (looked in {folder})")
    return root
