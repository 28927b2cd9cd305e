import gzip
import io
import pickle
import re
import struct

import numpy as np
import pytest

from tests.helpers import SHARED_DATA, needs_data
from toolkit.data import images, locate
from toolkit.errors import ToolkitError
from toolkit.preprocessing.image import augmentation


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(locate.DATA_DIR_ENV, raising=False)


def test_folder_with_train_and_test(image_data):
    splits = images.load("folder", image_data, validation_split=0.25)
    assert splits.class_names == ("blue", "green", "red")
    assert splits.image_shape == (16, 16, 3)
    assert len(splits.train[0]) == 36 and len(splits.validation[0]) == 12 and len(splits.test[0]) == 12
    assert np.bincount(splits.validation[1]).tolist() == [4, 4, 4]  # stratified
    assert splits.train[0].dtype == np.uint8
    red = splits.train[0][splits.train[1] == 2].mean(axis=(0, 1, 2))
    assert red[0] > 150 > red[2]


def test_streamed_files_are_split_as_arrays_are(image_data):
    """`load_files` keeps no pixels, but the same files in each split, and the arrays' pixel mean and variance."""
    arrays = images.load("folder", image_data, validation_split=0.25)
    files = images.load_files(image_data, validation_split=0.25)
    assert files.class_names == arrays.class_names and files.image_shape == arrays.image_shape
    for name in ("train", "validation", "test"):
        pixels, labels = getattr(arrays, name)
        assert getattr(files, name).labels.tolist() == labels.tolist()
        np.testing.assert_array_equal(getattr(files, name).sums, pixels.astype(np.int64).sum(axis=(1, 2)))
    scaled = arrays.train[0].reshape(-1, 3) / 255.0
    np.testing.assert_allclose(files.pixel_moments(), (scaled.mean(axis=0), scaled.var(axis=0)), rtol=1e-12)


def test_split_is_fixed_by_the_seed():
    pair = (np.arange(100).reshape(100, 1, 1, 1).astype("uint8"), np.repeat(np.arange(4), 25).astype("int32"))
    a = images.split(pair, 0.2, seed=5)[1][0].ravel().tolist()
    assert a == images.split(pair, 0.2, seed=5)[1][0].ravel().tolist()
    assert a != images.split(pair, 0.2, seed=6)[1][0].ravel().tolist()


def test_folder_images_are_resized_and_bad_files_skipped(tmp_path, capsys):
    from PIL import Image

    for name, size in (("a", (20, 10)), ("b", (8, 8))):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", size, (i * 50, 0, 0)).save(tmp_path / name / f"{i}.jpg")
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    splits = images.load("folder", tmp_path, image_size=(12, 12), validation_split=0.34)
    assert splits.image_shape == (12, 12, 3) and splits.test is None
    assert len(splits.train[0]) + len(splits.validation[0]) == 6
    assert "skipped 1 unreadable images" in capsys.readouterr().err


def test_a_file_that_fails_to_decode_leaves_the_others_in_order(tmp_path, capsys):
    """A PNG whose header reads but whose data is cut fails its batch; the others still come, in order."""
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    for i in range(12):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(tmp_path / "a" / f"{i:02d}.png")
        Image.new("RGB", (8, 8), (0, i * 20, 0)).save(tmp_path / "b" / f"{i:02d}.png")
    data = io.BytesIO()
    Image.new("RGB", (200, 200), (9, 9, 9)).save(data, format="PNG", compress_level=0)
    (tmp_path / "a" / "05_cut.png").write_bytes(data.getvalue()[:5000])
    pixels, labels = images.read_class_folders(tmp_path, ["a", "b"])
    assert labels.tolist() == [0] * 12 + [1] * 12
    assert pixels[:12, 0, 0, 0].tolist() == [i * 20 for i in range(12)]
    assert pixels[12:, 0, 0, 1].tolist() == [i * 20 for i in range(12)]
    err = capsys.readouterr().err
    assert err == f"Warning: skipped 1 unreadable images, e.g. {tmp_path / 'a' / '05_cut.png'}: not a readable image " \
                  "(truncated or corrupt data)\n"


def test_cached_arrays_are_keyed_by_the_decoder(tmp_path, cache, monkeypatch):
    import toolkit.preprocessing.image as image

    source = tmp_path / "copy.tar.gz"
    source.write_bytes(b"a data set")
    reads = []

    def read():
        reads.append(1)
        return (np.zeros((2, 4, 4, 3), np.uint8), np.zeros(2, np.int32)), None, ("a", "b")

    images._cached_arrays(source, read)
    images._cached_arrays(source, read)
    assert len(reads) == 1
    monkeypatch.setattr(image, "DECODER_VERSION", image.DECODER_VERSION + 1)
    images._cached_arrays(source, read)
    assert len(reads) == 2
    monkeypatch.setattr(images, "_has_tensorflow", lambda: False)
    images._cached_arrays(source, read)
    assert len(reads) == 3


@pytest.mark.parametrize("layout, message", [
    ({"train/a/1.png": None}, "one class only ('a')"),
    ({"train/a/1.png": None, "train/b/notes.txt": "x"}, "has no images"),
    ({"train/readme.txt": "x"}, "has no class folders"),
])
def test_unusable_folders(tmp_path, layout, message):
    from PIL import Image

    for name, text in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            Image.new("RGB", (4, 4)).save(tmp_path / name)
        else:
            (tmp_path / name).write_text(text)
    with pytest.raises(ToolkitError, match=re.escape(message)):
        images.load("folder", tmp_path)


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_files(tmp_path, cache):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    splits = images.load("fashion_mnist", tmp_path)
    assert splits.image_shape == (28, 28, 1) and splits.class_names[0] == "T-shirt/top"
    assert len(splits.test[0]) == 10 and splits.test[1].tolist() == list(range(10))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(ToolkitError, match="cannot read IDX file"):
        images.load("fashion_mnist", tmp_path)


def test_cifar10_official_python_batches(tmp_path, cache):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 255, (10, 3072)).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rows, b"labels": list(range(10))}, f)
    splits = images.load("cifar10", tmp_path)
    assert splits.image_shape == (32, 32, 3) and len(splits.test[0]) == 10
    # Rows are stored as R, G, B planes of 32x32.
    with open(folder / "test_batch", "rb") as f:
        first = pickle.load(f)[b"data"][0]
    assert splits.test[0][0, 0, 1].tolist() == [first[1], first[1024 + 1], first[2048 + 1]]


@needs_data("fashion-mnist")
def test_real_fashion_mnist(cache):
    splits = images.load("fashion_mnist", SHARED_DATA / "fashion-mnist")
    assert len(splits.train[0]) + len(splits.validation[0]) == 60000 and len(splits.test[0]) == 10000
    assert np.bincount(splits.test[1]).tolist() == [1000] * 10


@pytest.mark.slow  # decodes all 60,000 JPEGs into a fresh cache
@needs_data("cifar10")
def test_real_cifar10_jpeg_copy(cache):
    splits = images.load("cifar10", SHARED_DATA / "cifar10")
    assert splits.class_names == images.CIFAR10_CLASSES
    assert len(splits.train[0]) == 45000 and len(splits.validation[0]) == 5000
    assert splits.test[0].shape == (10000, 32, 32, 3) and np.bincount(splits.test[1]).tolist() == [1000] * 10


def test_augmentation_shifts_flips_and_is_off_at_inference():
    x = np.random.default_rng(0).uniform(1, 255, (64, 16, 16, 3)).astype("float32")
    augment = augmentation((16, 16, 3), translate=4, flip=True, seed=1)
    out = np.asarray(augment(x, training=True))
    assert out.shape == x.shape
    assert (out == 0).any(axis=(1, 2, 3)).mean() > 0.5  # most images shifted: zero fill at a border
    assert not np.array_equal(out[0], out[1][::-1])
    np.testing.assert_array_equal(np.asarray(augment(x, training=False)), x)
    assert augmentation((16, 16, 3), translate=0, flip=False) is None
