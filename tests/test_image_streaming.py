"""Folders of class folders streamed from their files (issue 13): memory holds the file list, never the pixels."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import toolkit
from tests.helpers import COLORS, one_error_line, save
from toolkit.data import images
from toolkit.data.pipelines import decoded_batches, disk_cache
from toolkit.errors import ToolkitError


def color_folders(root, count, size=8):
    """ROOT/<colour>/NNN.png: `count` noisy squares of each of COLORS, `size` pixels wide."""
    rng = np.random.default_rng(0)
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = np.clip(np.array(color) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


class Reads:
    """The file decoder of `files`, wrapped so that every path it reads is recorded (a py_function, tests only)."""

    def __init__(self, image_shape):
        import tensorflow as tf

        self.paths, self.tf, self.decode = [], tf, images.file_decoder(image_shape)

    def record(self, paths):
        self.paths.extend(p.decode() for p in paths.numpy())
        return 0

    def __call__(self, paths, sizes, cuts):
        done = self.tf.py_function(self.record, [paths], self.tf.int32)
        with self.tf.control_dependencies([done]):
            return self.decode(self.tf.identity(paths), sizes, cuts)


def stream(files, decode, batch_size, **kwargs):
    return decoded_batches((np.asarray(files.paths), files.sizes, files.cuts), files.labels, decode, batch_size,
                           **kwargs)


def epoch(dataset):
    """(images, labels) of one whole epoch, concatenated."""
    parts = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def test_files_are_read_as_batches_need_them_and_each_once_an_epoch(tmp_path):
    files = images.load_files(color_folders(tmp_path / "data", 200), validation_split=0.1, seed=3).train
    reads = Reads(files.image_shape)
    dataset = stream(files, reads, 4, shuffle=True, seed=3)
    iterator = iter(dataset)
    first = next(iterator)
    assert first[0].shape == (4, 8, 8, 3)
    assert 4 <= len(reads.paths) <= 64 < len(files)  # a few batches in flight, not the data set
    del iterator

    reads.paths.clear()
    _, labels = epoch(dataset)
    assert sorted(reads.paths) == sorted(files.paths)  # every file read once
    assert np.bincount(labels).tolist() == np.bincount(files.labels).tolist() == [180, 180, 180]
    order = list(reads.paths)
    reads.paths.clear()
    epoch(dataset)
    assert sorted(reads.paths) == sorted(order) and reads.paths != order  # reshuffled each epoch


def test_streamed_pixels_are_those_read_into_memory(tmp_path):
    """Resized, with an animated GIF cut to its first frame and an unreadable file skipped with one warning line."""
    root = color_folders(tmp_path / "data", 5, size=12)
    frames = [Image.new("P", (10, 10), i) for i in (0, 1)]
    for frame in frames:
        frame.putpalette([200, 30, 30, 30, 40, 200] + [0] * 762)
    save(root / "red" / "animated.gif", frames[0], save_all=True, append_images=frames[1:])
    (root / "blue" / "broken.png").write_bytes(b"not a png")
    in_memory, labels = images.read_class_folders(root, sorted(COLORS), (16, 16))
    files = images.scan_class_folders(root, sorted(COLORS), (16, 16))
    gif = files.paths.index(str(root / "red" / "animated.gif"))
    assert files.cuts[gif] > 0 and files.cuts.sum() == files.cuts[gif]
    pixels, streamed_labels = epoch(stream(files, images.file_decoder(files.image_shape), 4))
    np.testing.assert_array_equal(pixels, in_memory)
    assert streamed_labels.tolist() == labels.tolist()
    np.testing.assert_array_equal(files.sums, in_memory.astype(np.int64).sum(axis=(1, 2)))


def test_the_scan_prints_its_warning_once_per_scan(tmp_path, capfd):
    root = color_folders(tmp_path / "data", 3)
    (root / "blue" / "broken.png").write_bytes(b"not a png")
    capfd.readouterr()
    images.scan_class_folders(root, sorted(COLORS))
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Warning: skipped 1 unreadable images, e.g. ")


def test_a_cached_scan_is_not_decoded_again(tmp_path, capfd):
    root = color_folders(tmp_path / "data", 4)
    (root / "green" / "broken.png").write_bytes(b"not a png")
    first = images.scan_class_folders(root, sorted(COLORS), cache_dir=tmp_path / "cache")
    warning = capfd.readouterr().err
    assert len(list((tmp_path / "cache").glob("scan-*.npz"))) == 1
    path = root / "red" / "000.png"  # garbled, with its size and modification time kept: the scan is reused
    stat = path.stat()
    path.write_bytes(b"\0" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = images.scan_class_folders(root, sorted(COLORS), cache_dir=tmp_path / "cache")
    assert again.paths == first.paths and np.array_equal(again.sums, first.sums)
    assert capfd.readouterr().err == warning  # the same warning line, said again
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: scanned anew, the file now skipped
    assert len(images.scan_class_folders(root, sorted(COLORS), cache_dir=tmp_path / "cache")) == len(first) - 1


def test_a_file_changed_since_the_scan_drops_its_batch_only(tmp_path):
    files = images.load_files(color_folders(tmp_path / "data", 4), validation_split=0.25, seed=1).train
    with open(files.paths[3], "ab") as f:
        f.write(b"longer than it was when it was scanned")
    _, labels = epoch(stream(files, images.file_decoder(files.image_shape), 1))
    assert len(labels) == len(files) - 1


@pytest.mark.parametrize("cache", ["memory", "folder"])
def test_a_cache_is_read_instead_of_the_files(tmp_path, cache):
    files = images.load_files(color_folders(tmp_path / "data", 40), validation_split=0.1, seed=3).train
    prefix = tmp_path / "cache" / f"train-{files.key(3, 8)}" if cache == "folder" else "memory"
    reads = Reads(files.image_shape)
    dataset = stream(files, reads, 8, shuffle=True, seed=3, cache=prefix)
    with disk_cache([prefix] if cache == "folder" else [], "busy"):
        first, first_labels = epoch(dataset)
    assert sorted(reads.paths) == sorted(files.paths)
    reads.paths.clear()
    if cache == "folder":
        assert (tmp_path / "cache" / f"{prefix.name}.index").is_file()
        dataset = stream(files, reads, 8, shuffle=True, seed=3, cache=prefix)  # as the next run builds it
    second, second_labels = epoch(dataset)
    assert reads.paths == []  # no file read: every example came from the cache
    assert np.bincount(second_labels).tolist() == np.bincount(files.labels).tolist()
    if cache == "folder":  # the same seed, the same order
        np.testing.assert_array_equal(second, first)
        assert second_labels.tolist() == first_labels.tolist()
    else:  # the same examples, reshuffled within the buffer
        assert sorted(map(bytes, second.astype(np.uint8))) == sorted(map(bytes, first.astype(np.uint8)))
        assert second_labels.tolist() != first_labels.tolist()


def test_a_cache_a_killed_run_left_half_written_is_written_again(tmp_path):
    files = images.load_files(color_folders(tmp_path / "data", 10), validation_split=0.1, seed=3).train
    folder = tmp_path / "cache"
    folder.mkdir()
    prefix = folder / f"train-{files.key()}"
    (folder / f"{prefix.name}_0.lockfile").write_text("Created at: 0")  # what TensorFlow leaves when killed
    (folder / f"{prefix.name}_0.data-00000-of-00001.tempstate123").write_bytes(b"half")
    (folder / "train-other.index").write_bytes(b"another cache: kept")
    with disk_cache([prefix], "busy"):
        _, labels = epoch(stream(files, images.file_decoder(files.image_shape), 8, cache=prefix))
        with pytest.raises(ToolkitError, match="busy"), disk_cache([folder / "train-x"], "busy"):
            pass  # a second run that would write meanwhile
    assert len(labels) == len(files)
    written = [f"{prefix.name}.index", f"{prefix.name}.data-00000-of-00001", "train-other.index"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(written)
    with disk_cache([prefix], "busy"), disk_cache([prefix], "busy"):
        pass  # complete caches are only read: no lock


def test_cache_settings_are_checked():
    from toolkit.tasks.image_classification import TrainConfig

    TrainConfig(dataset="folder", cache="none").validate()
    TrainConfig(dataset="cifar10", cache="memory").validate()
    with pytest.raises(ValueError, match="cache applies to --dataset folder"):
        TrainConfig(dataset="cifar10", cache="none").validate()
    with pytest.raises(ValueError, match="Received: cache=''"):
        TrainConfig(dataset="folder", cache="").validate()
    with pytest.raises(ValueError, match="is a file"):
        TrainConfig(dataset="folder", cache=__file__).validate()


def test_train_images_streams_a_folder_resumes_and_reads_its_cache(tmp_path):
    """`toolkit train images` on class folders: the file fingerprint in config.json; a resume that adds
    --cache DIR writes it; the next epoch reads it (the images are garbled meanwhile, size and time kept)."""
    from toolkit.training import data_fingerprint

    data = tmp_path / "data"
    color_folders(data / "train", 12, size=16)
    color_folders(data / "test", 3, size=16)
    (data / "train" / "red" / "broken.png").write_bytes(b"not a png")
    run, cache = tmp_path / "run", tmp_path / "cache"
    command = ["train", "images", "--dataset", "folder", "--data-dir", str(data), "--arch", "lenet5", "--out", str(run),
               "--batch-size", "8"]
    runner = CliRunner()
    result = runner.invoke(toolkit, [*command, "--epochs", "1"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    names = sorted(f"{p.parent.name}/{p.name}:{p.stat().st_size}" for p in (data / "train").glob("*/*.png")
                   if p.name != "broken.png")
    assert config["data"] == data_fingerprint(names) and config["data"]["examples"] == 36
    assert config["image_shape"] == [16, 16, 3] and config["train"]["cache"] is None
    assert "skipped 1 unreadable images" in result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_examples"] == 9

    result = runner.invoke(toolkit, [*command, "--epochs", "2", "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.stderr
    written = sorted(p.name for p in cache.iterdir())
    assert [n.split("-")[0] for n in written if n.endswith(".index")] == ["train", "validation"], written
    assert sum(n.startswith("scan-") for n in written) == 2  # train and test folders

    for path in (data / "train").glob("*/*.png"):
        stat = path.stat()
        path.write_bytes(b"\0" * stat.st_size)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = runner.invoke(toolkit, [*command, "--epochs", "3", "--cache", str(cache)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in cache.iterdir()) == written
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [1, 2, 3]
    assert np.isfinite(state["history"][-1]["loss"]) and state["history"][-1]["val_accuracy"] > 0.5
    assert json.loads((run / "metrics.json").read_text())["test_examples"] == 9

    # Without the cache the garbled files are all that is left to read.
    result = runner.invoke(toolkit, [*command, "--epochs", "4", "--cache", "none"])
    assert result.exit_code == 1 and "no readable images" in result.output


def test_cache_is_refused_for_arrays_in_one_line(tmp_path):
    result = CliRunner().invoke(toolkit, ["train", "images", "--dataset", "cifar10", "--cache", str(tmp_path),
                                          "--out", str(tmp_path / "run")])
    assert "cache applies to --dataset folder" in one_error_line(result)
