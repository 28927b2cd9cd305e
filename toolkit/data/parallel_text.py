"""Parallel text: sentence pairs for translation, from Multi30k or a tab-separated file.

Multi30k task 1 (Elliott et al., 2016) ships one gzipped file per split and language,
`{train,val,test_2016_flickr}.{en,de,fr,cs}.gz`, line i of each aligned. Read from a local
copy (`--data-dir`, or `$TOOLKIT_DATA_DIR/multi30k`): the `task1/raw/` folder itself or
a folder above it. Without one, the files are downloaded from the data set's repository.

A pair file (`--pairs`) holds one pair a line: source TAB target, anything after a second
tab ignored (the Anki/Tatoeba export format, whose third column is attribution).

A gzipped file is decompressed as it is read, and refused past `$TOOLKIT_MAX_MEMBER_BYTES` of text
(64 MiB by default; Multi30k's largest file holds 2.1 MB), so a small file cannot inflate into gigabytes.
"""

import dataclasses
import gzip
import io

from toolkit.data import archives, locate
from toolkit.errors import ToolkitError

MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{name}"
MULTI30K_LANGUAGES = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr")


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Aligned source and target sentences."""

    source: list
    target: list

    def __len__(self):
        return len(self.source)


def find_multi30k(data_dir=None):
    """The folder holding Multi30k's raw `*.gz` files (downloaded into the cache when no local copy)."""
    local = locate.local_copy("multi30k", data_dir)
    if local is None:
        return locate.cache_dir() / "multi30k"
    if not local.is_dir():
        raise ToolkitError(f"no such folder: {local}")
    for candidate in (local, local / "raw", local / "task1" / "raw", local / "data" / "task1" / "raw"):
        if any(candidate.glob("*.en.gz")):
            return candidate
    raise ToolkitError(f"no Multi30k files in {local}: expected task1/raw/{{train,val,test_2016_flickr}}.LANG.gz")


def multi30k_split(split, source_language, target_language, data_dir=None):
    """One split of Multi30k as `Pairs` in the order of the files."""
    if split not in MULTI30K_SPLITS and not split.startswith("test_"):
        raise ValueError(f"split must be one of {list(MULTI30K_SPLITS)} (or another test_* file). Received: {split!r}")
    for language in (source_language, target_language):
        if language not in MULTI30K_LANGUAGES:
            raise ValueError(f"Multi30k languages are {list(MULTI30K_LANGUAGES)}. Received: {language!r}")
    if source_language == target_language:
        raise ValueError(f"source and target are both {source_language!r}")
    folder = find_multi30k(data_dir)
    source = _read_lines(_multi30k_file(folder, f"{split}.{source_language}.gz", data_dir))
    target = _read_lines(_multi30k_file(folder, f"{split}.{target_language}.gz", data_dir))
    if len(source) != len(target):
        raise ToolkitError(f"{split}: {len(source)} {source_language} lines but {len(target)} {target_language} lines")
    return Pairs(source, target)


def _multi30k_file(folder, name, data_dir):
    path = folder / name
    if path.is_file():
        return path
    if locate.local_copy("multi30k", data_dir) is not None:
        raise ToolkitError(f"no {name} in {folder}")
    return archives.download(MULTI30K_URL.format(name=name), path)


def _read_lines(path):
    try:
        if str(path).endswith(".gz"):
            stream = archives.capped(gzip.open(path, "rb"), f"{path} (decompressed)")
        else:
            stream = open(path, "rb")
        with io.TextIOWrapper(stream, encoding="utf-8") as f:
            return [line.rstrip("\n").strip() for line in f]
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise ToolkitError(f"cannot read {path}: {e}") from None


def read_pairs(path):
    """`Pairs` from a tab-separated file: source TAB target [TAB anything]; blank lines skipped."""
    pairs = Pairs([], [])
    for number, line in enumerate(_read_lines(path), 1):
        if not line:
            continue
        columns = line.split("\t")
        if len(columns) < 2 or not columns[0].strip() or not columns[1].strip():
            raise ToolkitError(f"{path}, line {number}: expected source<TAB>target")
        pairs.source.append(columns[0].strip())
        pairs.target.append(columns[1].strip())
    if not pairs.source:
        raise ToolkitError(f"{path}: no sentence pairs in it")
    return pairs


def split_pairs(pairs, fraction, seed):
    """(rest, held_out): a seeded random `fraction` of the pairs held out."""
    import random

    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    cut = max(1, round(len(order) * fraction))
    if cut >= len(order):
        raise ToolkitError(f"{len(pairs)} pairs are too few to hold out {fraction:.0%} for validation")
    held, rest = sorted(order[:cut]), sorted(order[cut:])
    pick = lambda idx: Pairs([pairs.source[i] for i in idx], [pairs.target[i] for i in idx])  # noqa: E731
    return pick(rest), pick(held)
