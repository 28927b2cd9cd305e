"""Hostile image inputs (issue 12): a data file that runs code, GIFs that inflate, JPEGs that promise more than they hold."""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import warnings
import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import REPO, one_error_line, save
from toolkit.data import images, locate
from toolkit.errors import ToolkitError
from toolkit.preprocessing.image import MAX_IMAGE_PIXELS, decode_pixels, first_gif_frame


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(locate.DATA_DIR_ENV, raising=False)


# === A CIFAR-10 batch that runs a command when unpickled ===

class Touch:
    """Unpickling this calls os.system("touch PATH")."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def batch(rows, labels, numpy_1=False):
    """A python batch as CIFAR-10 ships them: a dict of bytes keys; `numpy_1` names the array rebuilder
    as the real files (pickled under NumPy 1) do, `numpy.core.multiarray._reconstruct`."""
    data = pickle.dumps({b"batch_label": b"batch", b"data": rows, b"labels": labels,
                         b"filenames": [b"x.png"] * len(labels)}, protocol=3 if numpy_1 else 4)
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n") if numpy_1 else data


def cifar_tarball(path, batches):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_crafted_cifar_batch_is_refused_before_it_runs(tmp_path, cache):
    marker = tmp_path / "MARKER"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    good = batch(np.zeros((2, 3072), np.uint8), [0, 1])
    tarball = cifar_tarball(tmp_path / "cifar-10-python.tar.gz",
                            {name: pickle.dumps(Touch(marker), protocol=2) if name == "data_batch_3" else good
                             for name in names})
    with pytest.raises(ToolkitError, match=r"data_batch_3: not a CIFAR-10 python batch \(it would call posix.system"):
        images.load("cifar10", tarball)
    assert not marker.exists()
    result = CliRunner().invoke(toolkit, ["train", "images", "--data-dir", str(tarball), "--out", str(tmp_path / "run"),
                                          "--epochs", "1"])
    assert "not a CIFAR-10 python batch" in one_error_line(result)
    assert not marker.exists()


def test_well_formed_batches_still_read(tmp_path, cache):
    rng = np.random.default_rng(0)
    rows = {name: rng.integers(0, 256, (4, 3072)).astype(np.uint8)
            for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}
    tarball = cifar_tarball(tmp_path / "cifar-10-python.tar.gz",
                            {name: batch(data, [0, 1, 2, 3], numpy_1=name != "test_batch") for name, data in rows.items()})
    assert b"numpy.core.multiarray" in batch(rows["test_batch"], [0], numpy_1=True)
    splits = images.load("cifar10", tarball, validation_split=0.25)
    assert len(splits.train[0]) + len(splits.validation[0]) == 20
    first = rows["test_batch"][0]
    assert splits.test[0][0, 0, 1].tolist() == [first[1], first[1024 + 1], first[2048 + 1]]
    assert splits.test[1].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("content, message", [
    ({b"data": np.zeros((2, 3072), np.uint8)}, "KeyError"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 images, 1 labels"),
    ([1, 2, 3], "TypeError"),
])
def test_batches_of_another_shape_get_one_line(tmp_path, cache, content, message):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(content))
    with pytest.raises(ToolkitError, match=f"data_batch_1: not a CIFAR-10 python batch .*{message}"):
        images.load("cifar10", tmp_path)


# === Animated GIFs: the first frame only ===

def animated_gif(frames, size):
    """`frames` frames of `size` x `size`, black and white in turn (a few KB each): two one-frame GIFs made by
    Pillow, their image blocks repeated (Pillow would hold every frame in memory to write them)."""
    from PIL import Image

    one_frame = []
    for index in (0, 1):
        image = Image.new("P", (size, size), index)
        image.putpalette([0, 0, 0, 255, 255, 255])
        one_frame.append(save(io.BytesIO(), image, format="GIF", optimize=False).getvalue())
    packed = one_frame[0][10]
    header = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)  # with the global colour table
    assert one_frame[0][:header] == one_frame[1][:header]
    blocks = [gif[header:-1] for gif in one_frame]  # extensions and image, without the trailer
    return one_frame[0][:header] + b"".join(blocks[n % 2] for n in range(frames)) + b"\x3b"


def test_an_animation_is_cut_to_its_first_frame(tmp_path):
    import tensorflow as tf

    data = animated_gif(40, 64)
    assert tf.io.decode_gif(data).shape[0] == 40
    cut = first_gif_frame(data)
    assert len(cut) < len(data) / 10 and tf.io.decode_gif(cut).shape[0] == 1
    np.testing.assert_array_equal(tf.io.decode_gif(cut)[0], tf.io.decode_gif(data)[0])
    one_frame = animated_gif(1, 64)
    assert first_gif_frame(one_frame) is one_frame and first_gif_frame(b"\x89PNG...") == b"\x89PNG..."
    # Training reads the same bytes.
    (tmp_path / "x.gif").write_bytes(data)
    assert tf.io.decode_gif(images._encoded(tmp_path / "x.gif")).shape[0] == 1


def test_a_first_frame_larger_than_the_screen_is_held_to_the_pixel_limit():
    gif = bytearray(animated_gif(1, 8))
    descriptor = gif.index(b"\x2c\x00\x00\x00\x00\x08\x00\x08\x00")  # at 0,0, 8x8
    gif[descriptor + 5: descriptor + 9] = struct.pack("<HH", 10_000, 6_000)  # the screen stays 8x8
    assert 10_000 * 6_000 > MAX_IMAGE_PIXELS
    with pytest.raises(ToolkitError, match="10000x6000 is too large to decode"):
        decode_pixels(bytes(gif), (8, 8, 3), "tall.gif")


# === JPEGs that promise more than they hold ===

def noise_jpeg(size):
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return save(io.BytesIO(), Image.fromarray(noise), format="JPEG", quality=90).getvalue()


def truncated_jpegs():
    """A 2000x2000 JPEG cut after 2 KB, and a 64x64 one cut in half with its end-of-image marker put back
    (libjpeg fills the rest with gray, warns on stderr and goes on)."""
    small = noise_jpeg(64)
    return {"cut.jpg": noise_jpeg(2000)[:2048], "half.jpg": small[: len(small) // 2] + b"\xff\xd9"}


@pytest.mark.parametrize("name", ["cut.jpg", "half.jpg"])
def test_truncated_jpegs_are_one_short_error(capfd, name):
    with pytest.raises(ToolkitError) as error:
        decode_pixels(truncated_jpegs()[name], (32, 32, 3), name)
    assert str(error.value) == f"{name}: not a readable image (truncated or corrupt data)"
    assert "JPEG" not in capfd.readouterr().err  # libjpeg's own warning kept off stderr


def test_classify_answers_a_truncated_jpeg_with_one_line(tiny_image_model, tmp_path):
    for name, data in truncated_jpegs().items():
        (tmp_path / name).write_bytes(data)
        for runtime in ("tensorflow", "litert"):
            if (name, runtime) == ("half.jpg", "litert"):
                continue  # Pillow keeps libjpeg's warning to itself: answered, gray where data are missing (README)
            result = CliRunner().invoke(toolkit, ["classify", str(tmp_path / name), "--model", str(tiny_image_model),
                                                  "--runtime", runtime])
            assert one_error_line(result) == f"Error: {tmp_path / name}: not a readable image (truncated or corrupt data)"
    answered = CliRunner().invoke(toolkit, ["classify", str(tmp_path / "half.jpg"), "--model", str(tiny_image_model)])
    assert answered.exit_code == 0 and answered.stdout.startswith(str(tmp_path / "half.jpg"))


def huge_png_header(width, height):
    """A PNG whose header says WIDTHxHEIGHT, with one row of data: Pillow opens it, nothing decodes it."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 3)) + chunk(b"IEND", b"")


def test_training_skips_what_classify_refuses(tmp_path, capfd):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (16, 16), (200, 30 * i, 30)).save(tmp_path / label / f"{i}.png")
    (tmp_path / "a" / "half.jpg").write_bytes(truncated_jpegs()["half.jpg"])
    (tmp_path / "b" / "huge.png").write_bytes(huge_png_header(10_000, 6_000))
    pixels, labels = images.read_class_folders(tmp_path, ["a", "b"])
    assert pixels.shape == (6, 16, 16, 3) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "JPEG" not in err, err
    assert err.startswith(f"Warning: skipped 2 unreadable images, e.g. {tmp_path / 'a' / 'half.jpg'}: not a readable "
                          "image (truncated or corrupt data)")
    with pytest.raises(ToolkitError, match="10000x6000 is too large to decode"):
        decode_pixels(huge_png_header(10_000, 6_000), (16, 16, 3), "huge.png")


@pytest.mark.parametrize("width, height, message", [
    (10_000, 6_000, "huge.png: 10000x6000 is too large to decode (limit 50,000,000 pixels)"),
    (10_000, 10_000, "huge.png: 10000x10000 is too large to decode"),  # Pillow warns past 89 million pixels
    (20_000, 20_000, "huge.png: too large to decode (over 50,000,000 pixels)"),  # Pillow refuses past 179 million
])
def test_images_over_the_pixel_limit_get_one_line(capfd, width, height, message):
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ToolkitError) as error:
        warnings.simplefilter("always")
        decode_pixels(huge_png_header(width, height), (16, 16, 3), "huge.png")
    assert str(error.value).startswith(message)
    assert not caught and capfd.readouterr().err == ""  # no DecompressionBombWarning: it would be a second line


# === What it costs, measured in a fresh process ===

MEASURE = """
import json, resource, sys
from toolkit.errors import ToolkitError
from toolkit.preprocessing.image import decode_pixels

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

small, gif, cut = (open(path, "rb").read() for path in sys.argv[1:4])
decode_pixels(small, (32, 32, 3))
before = peak_mb()
decode_pixels(gif, (32, 32, 3))
out = {"gif_mb": peak_mb() - before}
try:
    decode_pixels(cut, (32, 32, 3), "cut.jpg")
except ToolkitError as e:
    out["cut"] = str(e)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A fresh process, TensorFlow logging everything: the peak memory a 300-frame 2000x2000 GIF adds to
    decoding, and what decoding a truncated JPEG writes on stderr."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("hostile")
    Image.new("RGB", (32, 32), (200, 30, 30)).save(folder / "small.png")
    (folder / "x.gif").write_bytes(animated_gif(300, 2000))
    (folder / "cut.jpg").write_bytes(truncated_jpegs()["cut.jpg"])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}
    env.pop("TOOLKIT_DEBUG", None)
    result = subprocess.run([sys.executable, "-c", MEASURE, *(str(folder / n) for n in ("small.png", "x.gif", "cut.jpg"))],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_an_animated_gif_costs_its_first_frame(measured):
    out, _ = measured
    # 300 frames of 2000x2000 inflate to 1.2 GB of indices; the first frame, decoded and resized, under 100 MB.
    assert out["gif_mb"] < 150, out


def test_libjpeg_says_nothing_even_with_tensorflow_logging_on(measured):
    out, stderr = measured
    assert out["cut"] == "cut.jpg: not a readable image (truncated or corrupt data)"
    assert "JPEG" not in stderr and "jpeg" not in stderr, stderr
