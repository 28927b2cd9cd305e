"""Archives under hostile use: bombs refused while streaming, kills and new versions leave nothing behind."""

import gzip
import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from toolkit.data import archives, captions, imdb, parallel_text
from toolkit.errors import ToolkitError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_tarball(path, members):
    """members: {name: bytes}; gzip-compressed, so zeros shrink a thousandfold, as in a bomb."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def hidden(folder):
    """What an extraction left in `folder` besides copies and their records: temporaries."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".") and not p.name.endswith(".source"))


# === Bombs: bytes and members, counted while streaming ===

def test_a_tarball_that_inflates_past_the_limit_is_refused_with_the_variable_named(tmp_path, monkeypatch):
    tarball = make_tarball(tmp_path / "bomb.tar.gz", {"top/zeros.txt": bytes(20 << 20)})  # 20 MB in 20 KB
    assert tarball.stat().st_size < 100_000
    monkeypatch.setenv("TOOLKIT_MAX_EXTRACT_BYTES", str(1 << 20))
    with pytest.raises(ToolkitError) as error:
        archives.extract_tarball(tarball, tmp_path / "cache" / "out")
    message = str(error.value)
    assert "more than 1,048,576 bytes" in message and "TOOLKIT_MAX_EXTRACT_BYTES" in message
    assert "\n" not in message
    assert list((tmp_path / "cache").iterdir()) == []  # nothing written stays, no temporary either


def test_members_each_under_the_limit_are_refused_together(tmp_path):
    tarball = make_tarball(tmp_path / "many.tar.gz", {f"top/{i}.txt": bytes(3000) for i in range(3)})
    with pytest.raises(ToolkitError, match="more than 8,000 bytes"):
        archives.extract_tarball(tarball, tmp_path / "out", max_bytes=8000)
    target = archives.extract_tarball(tarball, tmp_path / "out", max_bytes=9000)  # exactly the limit: fine
    assert sorted(p.name for p in (target / "top").iterdir()) == ["0.txt", "1.txt", "2.txt"]


def test_bytes_are_counted_as_written_whatever_the_header_says(tmp_path, monkeypatch):
    tarball = make_tarball(tmp_path / "liar.tar.gz", {"top/small.txt": b"x" * 100})
    real = tarfile.TarFile.extractfile
    # a member whose data turns out longer than its header claims (as a sparse member's can)
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda self, member: io.BytesIO(real(self, member).read() * 1000))
    with pytest.raises(ToolkitError, match="more than 10,000 bytes"):
        archives.extract_tarball(tarball, tmp_path / "out", max_bytes=10_000)
    assert [p.name for p in tmp_path.iterdir()] == ["liar.tar.gz"]


def test_a_bomb_is_refused_without_holding_it_in_memory(tmp_path):
    tarball = make_tarball(tmp_path / "bomb.tar.gz", {"zeros.bin": bytes(64 << 20)})
    tracemalloc.start()
    try:
        with pytest.raises(ToolkitError, match="TOOLKIT_MAX_EXTRACT_BYTES"):
            archives.extract_tarball(tarball, tmp_path / "out", max_bytes=4 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB allocated"


def test_too_many_members_are_refused(tmp_path, monkeypatch):
    tarball = make_tarball(tmp_path / "crowd.tar.gz", {f"f{i}": b"" for i in range(30)})
    monkeypatch.setenv("TOOLKIT_MAX_EXTRACT_MEMBERS", "20")
    with pytest.raises(ToolkitError, match="more than 20 files and folders.*TOOLKIT_MAX_EXTRACT_MEMBERS"):
        archives.extract_tarball(tarball, tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["crowd.tar.gz"]


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_a_bad_limit_is_one_clear_error(tmp_path, monkeypatch, value):
    tarball = make_tarball(tmp_path / "a.tar.gz", {"x": b"1"})
    monkeypatch.setenv("TOOLKIT_MAX_EXTRACT_BYTES", value)
    with pytest.raises(ToolkitError, match=f"TOOLKIT_MAX_EXTRACT_BYTES must be a positive number of bytes. Received: '{value}'"):
        archives.extract_tarball(tarball, tmp_path / "out")


@pytest.mark.parametrize("name", ["imdb/aclImdb_v1.tar.gz", "imdb/aclImdb_unsup.tar.gz", "cifar10/cifar10-jpeg.tar.gz"])
def test_the_real_tarballs_fit_the_default_limits_with_room_to_spare(name):
    if not (SHARED_DATA / name).exists():
        pytest.skip(f"needs ../shared/data/{name}")
    members = size = 0
    with tarfile.open(SHARED_DATA / name, "r|*") as tar:  # headers only: the data is skipped, not inflated
        for member in tar:
            members, size = members + 1, size + member.size
    # Upstream IMDB holds both tarballs' reviews, plus about 90 MB of .feat and url files.
    assert 2 * (size + (100 << 20)) < archives.DEFAULTS[archives.MAX_EXTRACT_BYTES]
    assert 2 * members < archives.DEFAULTS[archives.MAX_EXTRACT_MEMBERS]
    assert 10 * 3_394_868 < archives.DEFAULTS[archives.MAX_MEMBER_BYTES]  # Flickr8k.token.txt


def test_a_member_outside_the_target_after_others_leaves_nothing(tmp_path):
    tarball = make_tarball(tmp_path / "evil.tar.gz", {"top/ok.txt": b"1" * 5000, "top/../../escape.txt": b"2"})
    with pytest.raises(ToolkitError, match="would land outside"):
        archives.extract_tarball(tarball, tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["evil.tar.gz"]


# === Interrupted and repeated extractions ===

KILLED_EXTRACTION = textwrap.dedent("""
    import sys, tarfile, time
    from toolkit.data import archives

    real = tarfile.TarFile.extractfile

    def extractfile(self, member):  # stop for good after the first file, as a slow disk would
        if member.name.endswith("2.txt"):
            print("writing", flush=True)
            time.sleep(600)
        return real(self, member)

    tarfile.TarFile.extractfile = extractfile
    archives.extract_tarball(sys.argv[1], sys.argv[2])
""")


def test_a_killed_extraction_is_cleaned_up_by_the_next_one(tmp_path):
    tarball = make_tarball(tmp_path / "a.tar.gz", {f"top/{i}.txt": b"x" * 1000 for i in range(1, 4)})
    cache = tmp_path / "cache"
    process = subprocess.Popen([sys.executable, "-c", KILLED_EXTRACTION, str(tarball), str(cache / "a")],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        left = hidden(cache)
        assert len(left) == 1 and (cache / left[0] / "top" / "1.txt").is_file()
        archives.remove_abandoned(cache)  # its owner is alive and holds the lock: left alone
        assert hidden(cache) == left
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
    assert hidden(cache) == left  # a kill leaves the temporary folder behind...
    target = archives.extract_tarball(tarball, cache / "a")
    assert hidden(cache) == []  # ...which the next extraction removes
    assert sorted(p.name for p in (target / "top").iterdir()) == ["1.txt", "2.txt", "3.txt"]


def test_a_new_version_of_a_tarball_replaces_the_copy_of_the_old_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    tarball = make_tarball(data / imdb.TARBALL, {"aclImdb/train/pos/0_9.txt": b"old", "aclImdb/imdb.vocab": b""})
    other = make_tarball(tmp_path / imdb.TARBALL, {"aclImdb/train/pos/0_9.txt": b"another copy"})
    first = imdb.find_root(data)
    kept = imdb._extract(other)  # the same name at another path: not a version of the first
    assert (first / "train" / "pos" / "0_9.txt").read_bytes() == b"old"
    make_tarball(tarball, {"aclImdb/train/pos/0_9.txt": b"new", "aclImdb/imdb.vocab": b""})
    os.utime(tarball, ns=(0, tarball.stat().st_mtime_ns + 10**9))
    second = imdb.find_root(data)
    assert second != first and (second / "train" / "pos" / "0_9.txt").read_bytes() == b"new"
    extracted = tmp_path / "cache" / "extracted"
    assert sorted(p.name for p in extracted.iterdir() if not p.name.startswith(".")) == sorted(
        [second.parent.name, kept.name])
    assert hidden(extracted) == []


def test_an_extraction_finished_meanwhile_by_another_process_is_used(tmp_path, monkeypatch):
    tarball = make_tarball(tmp_path / "a.tar.gz", {"top/x.txt": b"ours"})
    target = tmp_path / "out"
    unpack = archives._unpack

    def racing(*args):
        unpack(*args)
        (target / "top").mkdir(parents=True)  # the other process renamed its copy into place first
        (target / "top" / "x.txt").write_bytes(b"theirs")

    monkeypatch.setattr(archives, "_unpack", racing)
    assert archives.extract_tarball(tarball, target) == target
    assert (target / "top" / "x.txt").read_bytes() == b"theirs"
    assert hidden(tmp_path) == []


# === Members read into memory: zips (captions) and gzipped text (parallel text) ===

def write_flickr8k_text(folder, token_text):
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "Flickr8k_text.zip", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("Flickr8k.token.txt", "w", force_zip64=True) as member:
            for chunk in token_text:
                member.write(chunk)
        for listing in captions.FLICKR8K_SPLITS.values():
            z.writestr(listing, "a.jpg\n")
    return folder


def test_a_captions_member_that_inflates_is_refused_while_streaming(tmp_path, monkeypatch):
    line = b"a.jpg#0\tA dog runs on the grass .\n"
    folder = write_flickr8k_text(tmp_path / "flickr", (line * 100_000 for _ in range(16)))  # 56 MB in 0.2 MB
    assert (folder / "Flickr8k_text.zip").stat().st_size < 1_000_000
    monkeypatch.setenv("TOOLKIT_MAX_MEMBER_BYTES", str(1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ToolkitError) as error:
            captions.load(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "Flickr8k.token.txt" in str(error.value) and "more than 1,048,576 bytes" in str(error.value)
    assert "TOOLKIT_MAX_MEMBER_BYTES" in str(error.value)
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB allocated"


def test_captions_under_the_member_limit_are_read(tmp_path, monkeypatch):
    folder = write_flickr8k_text(tmp_path / "flickr", [b"a.jpg#0\tA dog runs .\r\na.jpg#1\tA dog .\n"])
    monkeypatch.setenv("TOOLKIT_MAX_MEMBER_BYTES", "100")
    splits = captions.load(folder)
    assert splits["train"].captions == [["A dog runs .", "A dog ."]]


def test_an_image_member_past_the_cap_is_refused(tmp_path, monkeypatch):
    folder = write_flickr8k_text(tmp_path / "flickr", [b"a.jpg#0\tA dog runs .\n"])
    with zipfile.ZipFile(folder / "Flickr8k_Dataset.zip", "w", zipfile.ZIP_DEFLATED) as images:
        images.writestr("Flicker8k_Dataset/a.jpg", b"\xff\xd8" + bytes(300_000))
    monkeypatch.setenv("TOOLKIT_MAX_MEMBER_BYTES", "100000")
    splits = captions.load(folder)  # the captions fit
    with pytest.raises(ToolkitError, match="a.jpg in .*more than 100,000 bytes.*TOOLKIT_MAX_MEMBER_BYTES"):
        splits["test"].read("a.jpg")


def test_a_stream_is_counted_whatever_its_header_claims():
    stream = archives.capped(io.BytesIO(b"line\n" * 100), "the test stream", max_bytes=200)
    with pytest.raises(ToolkitError, match="refusing to read the test stream: it holds more than 200 bytes"):
        list(io.TextIOWrapper(stream, encoding="utf-8"))


def test_a_gzipped_pair_file_that_inflates_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "pairs.tsv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"A dog.\tEin Hund.\n" * 200_000)  # 3.4 MB
    monkeypatch.setenv("TOOLKIT_MAX_MEMBER_BYTES", str(1 << 20))
    with pytest.raises(ToolkitError, match="pairs.tsv.gz .decompressed.: it holds more than 1,048,576 bytes"):
        parallel_text.read_pairs(path)
    monkeypatch.setenv("TOOLKIT_MAX_MEMBER_BYTES", str(4 << 20))
    assert len(parallel_text.read_pairs(path)) == 200_000
