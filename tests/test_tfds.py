"""`--dataset tfds:NAME`: tensorflow-datasets sets, faked by `tfds.testing.mock_data` (registered sets, no files)
or prepared from tiny builders defined here into a temporary data_dir (real tfds files, no network)."""

import importlib.resources
import importlib.resources.abc
import importlib.util
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from click.testing import CliRunner
from PIL import Image

from cli.main import toolkit
from tests.helpers import REPO, one_error_line
from toolkit.data import images, tfds_data
from toolkit.errors import ToolkitError
from toolkit.serving import read_metadata

TINY_CNN = ["--arch", "lenet5", "--epochs", "1", "--batch-size", "8", "--warmup-epochs", "0", "--translate", "0",
            "--validation-split", "0.25"]
TINY_RNN = ["--cell", "simple_rnn", "--units", "4", "--embedding-dim", "4", "--vocabulary-size", "50", "--max-length",
            "8", "--batch-size", "8", "--epochs", "1"]
COLOURS = ("red", "green", "blue")


def noise(index):
    """Example `index` of ToolkitToyColours: noisy pixels of a size that varies with the index."""
    return np.random.default_rng(index).integers(0, 256, (10 + index % 5, 12 - index % 3, 3), dtype=np.uint8)


class ToolkitToyColours(tfds.core.GeneratorBasedBuilder):
    """24 RGB images of mixed sizes in three classes; a train split only."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {"image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=COLOURS)}
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                     supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(24):
            yield i, {"image": noise(i), "label": i % 3}


class ToolkitToyRatings(tfds.core.GeneratorBasedBuilder):
    """Images with a number for a label: no classes."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {"image": tfds.features.Image(shape=(8, 8, 3)), "rating": tfds.features.Scalar(np.float32)}
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                     supervised_keys=("image", "rating"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        yield 0, {"image": np.zeros((8, 8, 3), np.uint8), "rating": 0.5}


class ToolkitToyRgba(ToolkitToyRatings):
    """Images with an alpha channel."""

    def _info(self):
        features = {"image": tfds.features.Image(shape=(8, 8, 4)), "label": tfds.features.ClassLabel(names=["a", "b"])}
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                     supervised_keys=("image", "label"))


class ToolkitToyOffline(ToolkitToyRatings):
    """A set whose download fails with `error` (as it does without a network); records the data_dir it was
    prepared into."""

    tried = []  # noqa: RUF012
    error = ConnectionError("Failed to resolve 'example.invalid'")

    def _split_generators(self, dl_manager):
        type(self).tried.append(str(self.data_dir))
        raise self.error


@pytest.fixture(scope="module", autouse=True)
def importlib_resources():
    """tensorflow-datasets 4.9.10 imports `importlib_resources` to prepare a set whose builder lives in a package,
    as ours do (tests.test_tfds), but no longer requires it (tensorflow/datasets#11212); where it is missing,
    the standard library's `importlib.resources`, the same API, stands in."""
    with pytest.MonkeyPatch.context() as patch:
        if importlib.util.find_spec("importlib_resources") is None:
            patch.setitem(sys.modules, "importlib_resources", importlib.resources)
        yield


@pytest.fixture(scope="module")
def toy_data_dir(tmp_path_factory):
    """A tfds data_dir holding ToolkitToyColours, prepared (no download: its examples are made in code)."""
    data_dir = tmp_path_factory.mktemp("tensorflow_datasets")
    ToolkitToyColours(data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def read_json(path):
    return json.loads(path.read_text())


def test_train_images_on_tfds_cifar10_resume_export_and_evaluate(tmp_path, toy_data_dir):
    run = tmp_path / "run"
    command = ["train", "images", "--dataset", "tfds:cifar10", "--out", str(run), *TINY_CNN]
    with tfds.testing.mock_data(num_examples=24):
        result = CliRunner().invoke(toolkit, command)
        assert result.exit_code == 0, result.output
        resumed = CliRunner().invoke(toolkit, [*command, "--epochs", "2"])
        assert resumed.exit_code == 0, resumed.output
        names = tfds.builder("cifar10").info.features["label"].names
    # A prepared cifar10 names its classes (airplane, ...) in its files; mock_data has none, so its code's "0".."9".
    assert names == [str(i) for i in range(10)]
    config = read_json(run / "config.json")
    assert config["train"]["dataset"] == "tfds:cifar10" and config["train"]["data_dir"] is None
    assert config["class_names"] == names and config["image_shape"] == [32, 32, 3]
    assert 0 < config["data"]["examples"] < 24  # the training images, validation held out
    metrics = read_json(run / "metrics.json")
    assert metrics["epochs_trained"] == 2 and metrics["test_examples"] == 24  # mock_data's test split
    assert "test accuracy" in result.stdout

    exported = CliRunner().invoke(toolkit, ["export", str(run), "--name", "tiny", "--to", str(tmp_path / "models")])
    assert exported.exit_code == 0, exported.output
    metadata = read_metadata(tmp_path / "models" / "tiny" / "1")
    assert metadata["class_names"] == names and metadata["image_shape"] == [32, 32, 3]
    assert metadata["train"]["dataset"] == "tfds:cifar10"

    def evaluate(*arguments):
        return CliRunner().invoke(toolkit, ["evaluate", "images", "--model", str(tmp_path / "models" / "tiny"),
                                            *arguments])

    with tfds.testing.mock_data(num_examples=24):
        evaluated = evaluate("--dataset", "tfds:cifar10")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["split"] == "test" and report["examples"] == 24 and report["class_names"] == names
    # The split training scored, decoded as served: the accuracy it recorded (the export averages flips, as it did).
    assert report["accuracy"] == metrics["test"]["accuracy_flip_averaged"]
    line = one_error_line(evaluate("--dataset", "tfds:toolkit_toy_colours", "--data-dir", str(toy_data_dir)))
    assert line == f"Error: the model's classes {names} are not the data's ['red', 'green', 'blue']"


def test_train_and_evaluate_sentiment_on_tfds_imdb_reviews(tmp_path):
    run = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=20):
        result = CliRunner().invoke(toolkit, ["train", "sentiment", "--dataset", "tfds:imdb_reviews", "--out", str(run),
                                              *TINY_RNN])
    assert result.exit_code == 0, result.output
    config = read_json(run / "config.json")
    assert config["train"]["dataset"] == "tfds:imdb_reviews" and config["class_names"] == ["neg", "pos"]
    assert config["task"] == "binary" and len(config["data"]["sha256"]) == 64
    metrics = read_json(run / "metrics.json")
    assert metrics["test_examples"] == 20
    assert (run / "best.keras").is_file()

    exported = CliRunner().invoke(toolkit, ["export", str(run), "--name", "tiny", "--to", str(tmp_path / "models")])
    assert exported.exit_code == 0, exported.output

    def evaluate(dataset, *arguments):
        return CliRunner().invoke(toolkit, ["evaluate", "sentiment", "--model", str(tmp_path / "models" / "tiny"),
                                            "--dataset", dataset, *arguments])

    out = tmp_path / "reports" / "imdb.json"
    with tfds.testing.mock_data(num_examples=20):
        evaluated = evaluate("tfds:imdb_reviews", "--out", str(out))
        other = evaluate("tfds:ag_news_subset")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["split"] == "test" and report["examples"] == 20 and report["class_names"] == ["neg", "pos"]
    assert report["accuracy"] == pytest.approx(metrics["test"]["accuracy"])  # the split training scored
    assert read_json(out) == report and report["confusion_png"] == str(out.with_name("imdb.confusion.png"))
    assert out.with_name("imdb.confusion.png").is_file()
    assert one_error_line(other) == ("Error: the model's classes ['neg', 'pos'] are not the data's ['World', 'Sports', "
                                     "'Business', 'Sci/Tech']")


def test_text_splits_hold_out_validation_by_class():
    with tfds.testing.mock_data(num_examples=40):
        splits = tfds_data.text_splits("tfds:ag_news_subset", validation_split=0.25, seed=7)
        train = list(splits.train.as_numpy_iterator())
        validation = list(splits.validation.as_numpy_iterator())
        everything = list(tfds.builder("ag_news_subset").as_dataset(split="train", as_supervised=True))
    assert splits.class_names == ("World", "Sports", "Business", "Sci/Tech")
    assert len(train) + len(validation) == 40 and len(train) == int(splits.train.cardinality())
    labels = np.array([int(label) for _, label in everything])
    expected = images.held_out(labels, 0.25, 7)
    assert sorted(text for text, _ in validation) == sorted(bytes(t.numpy()) for (t, _), held in
                                                            zip(everything, expected) if held)
    assert all(isinstance(text, bytes) and label.dtype == np.int32 for text, label in train)


def test_images_from_a_data_dir_decode_as_served(toy_data_dir):
    from toolkit.preprocessing.image import decode_pixels

    train, test, classes = tfds_data.image_arrays("tfds:toolkit_toy_colours", str(toy_data_dir))
    assert classes == COLOURS and test is None  # the builder has a train split only
    stored = tfds.builder("toolkit_toy_colours", data_dir=str(toy_data_dir)).as_dataset(split="train")
    first = next(iter(stored))["image"].shape  # tfds stores examples in an order of its own
    assert train[0].shape == (24, *first) and train[0].dtype == np.uint8  # mixed sizes: the first image's
    assert sorted(np.bincount(train[1])) == [8, 8, 8]

    def png(pixels):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()

    served = np.stack([decode_pixels(png(noise(i)), first) for i in range(24)]).astype(np.uint8)
    for pixels, label in zip(*train):
        matches = [i for i in range(24) if np.array_equal(served[i], pixels)]
        assert matches and all(i % 3 == label for i in matches)  # each image is the served pixels of one of its class

    splits = tfds_data.image_splits("tfds:toolkit_toy_colours", str(toy_data_dir), image_size=(8, 8),
                                    validation_split=0.25, seed=5)
    assert splits.image_shape == (8, 8, 3) and splits.class_names == COLOURS and splits.test is None
    assert np.bincount(splits.validation[1]).tolist() == [2, 2, 2] and len(splits.train[1]) == 18  # by class
    with pytest.raises(ToolkitError, match=r"^tfds:toolkit_toy_colours has no test split to score, nor a validation "
                                           r"split \(its splits: train\)$"):
        tfds_data.scored_images("tfds:toolkit_toy_colours", str(toy_data_dir), (8, 8, 3), COLOURS)


def test_tfds_data_dir_env_finds_a_set_prepared_elsewhere(toy_data_dir):
    """A fresh process without the builder's code (offline use: a set prepared on another machine) reads it
    from $TFDS_DATA_DIR."""
    code = ("import sys; from toolkit.data import tfds_data; "
            "train, test, classes = tfds_data.image_arrays('tfds:toolkit_toy_colours'); "
            "print(train[0].shape[0], test, list(classes)); assert 'tests.test_tfds' not in sys.modules")
    env = {**os.environ, "TFDS_DATA_DIR": str(toy_data_dir), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "24 None ['red', 'green', 'blue']"


def test_data_dir_reaches_tfds_and_a_failed_download_is_one_line(tmp_path, monkeypatch):
    def train(command="images"):
        ToolkitToyOffline.tried.clear()
        return CliRunner().invoke(toolkit, ["train", command, "--dataset", "tfds:toolkit_toy_offline", "--data-dir",
                                            str(tmp_path / "tfds"), "--out", str(tmp_path / "run")])

    line = one_error_line(train())
    assert line == ("Error: cannot download tfds:toolkit_toy_offline (no network?): ConnectionError: Failed to resolve "
                    "'example.invalid'; prepare it elsewhere with tfds build toolkit_toy_offline and pass --data-dir")
    assert ToolkitToyOffline.tried[0].startswith(str(tmp_path / "tfds" / "toolkit_toy_offline"))
    assert not (tmp_path / "run" / "config.json").exists()

    monkeypatch.setattr(ToolkitToyOffline, "error", ModuleNotFoundError("No module named 'pydub'", name="pydub"))
    line = one_error_line(train("sentiment"))
    assert line == "Error: cannot prepare tfds:toolkit_toy_offline: No module named 'pydub' (pip install pydub)"
    assert ToolkitToyOffline.tried[0].startswith(str(tmp_path / "tfds" / "toolkit_toy_offline"))


@pytest.mark.parametrize("command, dataset, message", [
    ("images", "tfds:no_such_set", "no tfds data set named 'no_such_set'; tfds.list_builders() lists the names"),
    ("images", "tfds:cifar1", "did you mean tfds:cifar10?"),
    ("images", "tfds:mnist:99.0.0", "cannot open tfds:mnist:99.0.0: Dataset mnist cannot be loaded at version 99.0.0"),
    ("images", "tfds:toolkit_toy_ratings", "label 'rating' is Scalar(shape=(), dtype=float32), not a ClassLabel"),
    ("images", "tfds:toolkit_toy_rgba", "tfds:toolkit_toy_rgba's images have 4 channels"),
    ("images", "tfds:imdb_reviews", "tfds:imdb_reviews is not an image data set: its input 'text' is Text"),
    ("sentiment", "tfds:mnist", "tfds:mnist is not a text data set: its input 'image' is Image"),
    ("sentiment", "tfds:toolkit_toy_ratings", "not a ClassLabel: the toolkit trains classifiers of named classes"),
    ("sentiment", "tfds:", "dataset tfds:NAME needs a data set name"),
])
def test_unusable_sets_get_one_error_line(tmp_path, command, dataset, message):
    with tfds.testing.mock_data(num_examples=2):
        result = CliRunner().invoke(toolkit, ["train", command, "--dataset", dataset, "--out", str(tmp_path / "run")])
    assert message in one_error_line(result)


def test_dataset_option_spells_its_choices():
    result = CliRunner().invoke(toolkit, ["train", "images", "--dataset", "cifar", "--out", "run"])
    assert result.exit_code == 2 and "expected cifar10, fashion_mnist, folder, tfds:NAME" in result.output
    result = CliRunner().invoke(toolkit, ["train", "sentiment", "--dataset", "imdb", "--out", "run"])
    assert result.exit_code == 2 and "expected tfds:NAME. Received: 'imdb'" in result.output
    result = CliRunner().invoke(toolkit, ["evaluate", "images", "--dataset", "cifar"])
    assert result.exit_code == 2 and "expected cifar10, fashion_mnist, folder, tfds:NAME" in result.output
    result = CliRunner().invoke(toolkit, ["evaluate", "sentiment", "--dataset", "imdb"])
    assert result.exit_code == 2 and "expected tfds:NAME. Received: 'imdb'" in result.output
    for group in ("train", "evaluate"):
        for command in ("images", "sentiment"):
            help_text = CliRunner().invoke(toolkit, [group, command, "--help"])
            assert help_text.exit_code == 0 and "$TFDS_DATA_DIR" in help_text.output
