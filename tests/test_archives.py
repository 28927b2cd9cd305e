import hashlib
import io
import tarfile
import urllib.request

import pytest

from toolkit.data import archives
from toolkit.errors import ToolkitError


def make_tarball(path, members):
    """members: {name: bytes}, or {name: ("symlink", target)}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_extract_tarball_unpacks_once(tmp_path):
    tarball = make_tarball(tmp_path / "a.tar.gz", {"top/x.txt": b"hello"})
    target = archives.extract_tarball(tarball, tmp_path / "out")
    assert (target / "top" / "x.txt").read_bytes() == b"hello"
    tarball.unlink()  # a second call reuses the extracted folder
    assert archives.extract_tarball(tarball, tmp_path / "out") == target


@pytest.mark.parametrize("members", [
    {"ok.txt": b"1", "../escape.txt": b"2"},
    {"ok.txt": b"1", "/tmp/absolute.txt": b"2"},
    {"ok.txt": b"1", "link": ("symlink", "/etc/passwd")},
])
def test_extract_tarball_refuses_members_outside_target(tmp_path, members):
    tarball = make_tarball(tmp_path / "evil.tar.gz", members)
    with pytest.raises(ToolkitError, match="refusing to extract"):
        archives.extract_tarball(tarball, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.tar.gz"]


def test_extract_tarball_reports_a_broken_archive(tmp_path):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ToolkitError, match="cannot read archive"):
        archives.extract_tarball(broken, tmp_path / "out")


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fake_network(monkeypatch, payload):
    requested = []

    def urlopen(url, timeout=None):
        requested.append(url)
        return FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def test_download_verifies_and_renames_into_place(tmp_path, monkeypatch):
    payload = b"x" * 3_000_000
    requested = fake_network(monkeypatch, payload)
    dest = archives.download("https://example.org/f.bin", tmp_path / "f.bin", sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert requested == ["https://example.org/f.bin"]
    archives.download("https://example.org/f.bin", dest)  # cached: no second request
    assert len(requested) == 1


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    fake_network(monkeypatch, b"tampered")
    with pytest.raises(ToolkitError, match="corrupt"):
        archives.download("https://example.org/f.bin", tmp_path / "f.bin", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_download_network_failure_is_one_clear_error(tmp_path, monkeypatch):
    def urlopen(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(ToolkitError, match="cannot download https://example.org/f.bin"):
        archives.download("https://example.org/f.bin", tmp_path / "f.bin")
    assert list(tmp_path.iterdir()) == []
