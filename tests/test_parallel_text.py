"""Sentence pairs: Multi30k's raw files and tab-separated pair files."""

import gzip

import pytest

from tests.helpers import SHARED_DATA, needs_data
from toolkit.data import parallel_text
from toolkit.errors import ToolkitError

MULTI30K = SHARED_DATA / "multi30k"
needs_multi30k = needs_data("multi30k")


@needs_multi30k
@pytest.mark.parametrize("split,count", [("train", 29000), ("val", 1014), ("test_2016_flickr", 1000)])
def test_multi30k_splits_are_aligned(split, count):
    pairs = parallel_text.multi30k_split(split, "en", "de", MULTI30K)
    assert len(pairs) == count
    assert all(pairs.source) and all(pairs.target)


@needs_multi30k
def test_multi30k_any_language_pair_and_folder_level(monkeypatch):
    pairs = parallel_text.multi30k_split("val", "fr", "cs", MULTI30K / "task1" / "raw")
    assert len(pairs) == 1014
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(SHARED_DATA))  # the environment variable names the data root
    assert parallel_text.multi30k_split("val", "de", "en") == parallel_text.multi30k_split("val", "de", "en", MULTI30K)


def test_multi30k_refusals(tmp_path):
    with pytest.raises(ValueError, match="languages are"):
        parallel_text.multi30k_split("val", "en", "es", tmp_path)
    with pytest.raises(ValueError, match="both 'en'"):
        parallel_text.multi30k_split("val", "en", "en", tmp_path)
    with pytest.raises(ToolkitError, match="no Multi30k files"):
        parallel_text.multi30k_split("val", "en", "de", tmp_path)
    with gzip.open(tmp_path / "val.en.gz", "wt") as f:
        f.write("one\ntwo\n")
    with gzip.open(tmp_path / "val.de.gz", "wt") as f:
        f.write("eins\n")
    with pytest.raises(ToolkitError, match="2 en lines but 1 de lines"):
        parallel_text.multi30k_split("val", "en", "de", tmp_path)
    with pytest.raises(ToolkitError, match="no val.fr.gz"):
        parallel_text.multi30k_split("val", "en", "fr", tmp_path)


def test_pair_files(tmp_path):
    path = tmp_path / "deu.txt"
    path.write_text("Go.\tGeh.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\n\nHi.\tHallo!\n", encoding="utf-8")
    pairs = parallel_text.read_pairs(path)
    assert pairs.source == ["Go.", "Hi."] and pairs.target == ["Geh.", "Hallo!"]
    bad = tmp_path / "bad.txt"
    bad.write_text("Go.\tGeh.\nno tab here\n", encoding="utf-8")
    with pytest.raises(ToolkitError, match="line 2: expected source<TAB>target"):
        parallel_text.read_pairs(bad)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ToolkitError, match="cannot read"):
        parallel_text.read_pairs(binary)
    rest, held = parallel_text.split_pairs(parallel_text.Pairs(list("abcdefghij"), list("ABCDEFGHIJ")), 0.2, seed=1)
    assert len(rest) == 8 and len(held) == 2
    assert sorted(rest.source + held.source) == list("abcdefghij")
    assert [s.upper() for s in held.source] == held.target
