import hashlib
import tarfile
import urllib.request

import pytest

from tests.helpers import SHARED_DATA, files_per_class, needs_data
from toolkit.data import imdb, locate, text_folders
from toolkit.errors import ToolkitError


def labels_of(dataset):
    return [int(label) for _, label in dataset.as_numpy_iterator()]


def sorted_test_labels(text_data):
    """The sorted labels of the reviews in text_data/test: 0 for each neg/ file, 1 for each pos/ file."""
    counts = files_per_class(text_data / "test")
    return [0] * counts["neg"] + [1] * counts["pos"]


def test_text_folders_split_by_fixed_seed(text_data):
    a = text_folders.load_text_folders(text_data, validation_split=0.25, seed=3)
    b = text_folders.load_text_folders(text_data, validation_split=0.25, seed=3)
    assert a.class_names == ("neg", "pos")
    texts = lambda ds: sorted(t for t, _ in ds.as_numpy_iterator())  # noqa: E731
    assert texts(a.validation) == texts(b.validation)
    reviews = sum(files_per_class(text_data / "train").values())
    assert len(texts(a.validation)) == reviews // 4 and len(texts(a.train)) == reviews - reviews // 4
    assert not set(texts(a.train)) & set(texts(a.validation))
    assert sorted(labels_of(a.test)) == sorted_test_labels(text_data)  # the test folder, whole and untouched


def test_text_folders_take_any_number_of_classes(tmp_path):
    for name in ("comedy", "drama", "horror"):
        for i in range(4):
            (tmp_path / "train" / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / "train" / name / f"{i}.txt").write_text(f"{name} review {i}")
    splits = text_folders.load_text_folders(tmp_path, validation_split=0.25)
    assert splits.class_names == ("comedy", "drama", "horror")
    assert splits.test is None
    assert sorted(labels_of(splits.train) + labels_of(splits.validation)) == [0] * 4 + [1] * 4 + [2] * 4


@pytest.mark.parametrize("layout, message", [
    ({}, "has no train/ folder"),
    ({"train/notes.txt": "x"}, "has no class folders"),
    ({"train/pos/1.txt": "x"}, "one class only"),
    ({"train/pos/1.txt": "x", "train/neg/.keep": ""}, "has no .txt files"),
])
def test_text_folders_refuse_unusable_layouts(tmp_path, layout, message):
    for name, text in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(ToolkitError, match=message):
        text_folders.load_text_folders(tmp_path)


def make_aclimdb_tarball(text_data, path):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(text_data, arcname="aclImdb")
        tar.add(text_data / "train" / "pos", arcname="aclImdb/train/unsup")  # upstream has unlabelled reviews
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(locate.DATA_DIR_ENV, raising=False)
    return tmp_path / "cache"


def test_imdb_reads_every_local_layout(text_data, tmp_path, cache):
    tarball = make_aclimdb_tarball(text_data, tmp_path / imdb.TARBALL)
    extracted = imdb.find_root(tarball)
    assert extracted.name == "aclImdb" and cache in extracted.parents
    assert imdb.find_root(tmp_path) == extracted  # a folder holding the tarball
    assert imdb.find_root(text_data) == text_data  # the aclImdb folder itself
    assert imdb.find_root(extracted.parent) == extracted  # a folder holding aclImdb/
    splits = text_folders.load_text_folders(imdb.find_root(tarball), imdb.CLASS_NAMES)
    assert splits.class_names == ("neg", "pos")  # unsup is not a class
    assert sorted(labels_of(splits.test)) == sorted_test_labels(text_data)


def test_imdb_data_dir_from_environment(text_data, tmp_path, cache, monkeypatch):
    (tmp_path / "data").mkdir()
    make_aclimdb_tarball(text_data, tmp_path / "data" / "imdb")  # $TOOLKIT_DATA_DIR/imdb may be the tarball
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(tmp_path / "data"))
    assert imdb.find_root().name == "aclImdb"


def test_imdb_downloads_the_official_tarball_when_no_copy_is_given(text_data, tmp_path, cache, monkeypatch):
    payload = make_aclimdb_tarball(text_data, tmp_path / "served.tar.gz").read_bytes()
    requested = []

    class Response:
        def __init__(self):
            self.chunks = [payload, b""]

        def read(self, n):
            return self.chunks.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: requested.append(url) or Response())
    # The served bytes are our tiny tarball, so expect its checksum instead of the official one.
    monkeypatch.setattr(imdb, "SHA256", hashlib.sha256(payload).hexdigest())
    root = imdb.find_root()
    assert requested == [imdb.URL]
    assert (cache / "downloads" / imdb.TARBALL).read_bytes() == payload
    assert sorted(p.name for p in (root / "train").iterdir()) == ["neg", "pos", "unsup"]


def test_imdb_missing_copy_is_a_clear_error(tmp_path, cache):
    with pytest.raises(ToolkitError, match="no such file or folder"):
        imdb.find_root(tmp_path / "nowhere")
    with pytest.raises(ToolkitError, match="no IMDB data"):
        imdb.find_root(tmp_path)


@needs_data("imdb")
def test_real_imdb_splits(monkeypatch):
    # The default cache, not a fresh one: the tarball is extracted once, for this and the diagnose tests.
    monkeypatch.delenv(locate.DATA_DIR_ENV, raising=False)
    splits = text_folders.load_text_folders(imdb.find_root(SHARED_DATA / "imdb"), imdb.CLASS_NAMES)
    assert int(splits.train.cardinality()) == 22500
    assert int(splits.validation.cardinality()) == 2500
    assert int(splits.test.cardinality()) == 25000
    text, label = next(iter(splits.test))
    assert label.numpy() == 0 and len(text.numpy()) > 50


def test_token_ids_cache_in_a_folder_is_written_once_and_reused(text_data, tmp_path):
    """`--cache DIR`: the first run writes each split's token ids there; a second run with the same data and
    vocabulary reads them (no new files); a run that cuts reviews elsewhere gets caches of its own."""
    from toolkit.tasks import text_classification as tc

    cache = tmp_path / "cache"
    config = dict(data_dir=str(text_data), units=8, embedding_dim=8, epochs=1, cache=str(cache))
    first = tc.train(tc.TrainConfig(vocabulary_size=100, **config), tmp_path / "a")
    written = sorted(p.name for p in cache.iterdir())
    assert any(name.startswith("text-train-") and name.endswith(".index") for name in written), written
    assert any(name.startswith("text-validation-") and name.endswith(".index") for name in written), written
    again = tc.train(tc.TrainConfig(vocabulary_size=100, **config), tmp_path / "b")
    assert sorted(p.name for p in cache.iterdir()) == written
    assert again["test"]["accuracy"] == first["test"]["accuracy"]  # the same ids, the same seed: the same model
    tc.train(tc.TrainConfig(vocabulary_size=100, max_length=3, **config), tmp_path / "c")
    assert len(list(cache.glob("text-train-*.index"))) == 2


def test_a_cache_that_is_a_file_is_refused(text_data, tmp_path):
    from toolkit.tasks import text_classification as tc

    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        tc.TrainConfig(data_dir=str(text_data), cache=str(tmp_path / "file")).validate()
