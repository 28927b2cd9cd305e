"""Progress of long work (evaluation, downloads, encoding a caption set once): a bar on a terminal's
stderr, nothing at all when stderr is a pipe or a file."""

import io
import json
import re
import sys

import pytest
from click.testing import CliRunner

from cli.main import toolkit
from toolkit.progress import Progress


class FakeTerminal(io.StringIO):
    """What Progress sees when stderr is a terminal."""

    def isatty(self):
        return True


def last_bar(terminal):
    """The last bar drawn (each is drawn over the one before, after a `\\r`), without its padding."""
    return [line.rstrip() for line in terminal.getvalue().split("\r") if "[" in line][-1]


def test_the_commands_progress_is_the_librarys():
    import cli.output

    assert cli.output.Progress is Progress


def test_a_finished_bar_is_drawn_full_even_within_half_a_second():
    terminal = FakeTerminal()
    with Progress("images", terminal) as progress:
        progress.advance(3, total=10)  # a total the worker tells as it goes
        progress.advance(7, total=10)
        assert re.fullmatch(r"  10/10 images \[={30}\] 100% [\d,]+\.\d/s", last_bar(terminal)), terminal.getvalue()
    assert terminal.getvalue().endswith("\r") and Progress.on_screen is None  # erased when the block ends


def test_bytes_are_counted_in_mib():
    terminal = FakeTerminal()
    progress = Progress("MiB", terminal, total=4 << 20, unit=1 << 20)
    progress.advance(3 << 19)
    assert re.fullmatch(r"  1\.5/4\.0 MiB \[={11}> {18}\] 37% [\d,]+\.\d/s", last_bar(terminal)), terminal.getvalue()
    progress.close()


# === toolkit evaluate ===

def test_evaluate_draws_nothing_off_a_terminal_and_prints_strict_json(tiny_image_model, image_data):
    result = CliRunner().invoke(toolkit, ["evaluate", "images", "--model", str(tiny_image_model), "--dataset",
                                          "folder", "--data-dir", str(image_data)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # CliRunner's stderr is no terminal: no bar, not even an erased one
    report = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the report"))
    assert report["examples"] > 0


def test_evaluate_advances_the_bar_to_the_total(tiny_image_model, image_data):
    from toolkit.tasks.image_classification import evaluate

    terminal, calls = FakeTerminal(), []
    progress = Progress("images", terminal)

    def on_progress(n, total):
        calls.append((n, total))
        progress.advance(n, total)

    report = evaluate(tiny_image_model, "folder", image_data, on_progress=on_progress)
    total = report["examples"]
    assert calls[0] == (0, total)  # the start, so the rate leaves out loading the model and the data
    assert sum(n for n, _ in calls) == total and {t for _, t in calls} == {total}
    assert re.fullmatch(rf"  {total}/{total} images \[={{30}}\] 100% [\d,]+\.\d/s", last_bar(terminal))
    progress.close()


def test_evaluate_sentiment_scores_in_chunks_and_puts_each_answer_back_in_place(tiny_model, text_data):
    """Chunks go in length order; the report must still pair every review with its own answer."""
    from toolkit.metrics import classification_report
    from toolkit.tasks.text_classification import TextClassifier, evaluate

    calls = []
    report = evaluate(tiny_model, text_data, batch_size=1, on_progress=lambda n, total: calls.append((n, total)))
    assert report["examples"] == 20 and calls == [(0, 20), (16, 20), (4, 20)]  # the start, then chunks of 16 batches
    classifier = TextClassifier(tiny_model)
    texts, labels = [], []
    for name in classifier.class_names:
        for path in sorted((text_data / "test" / name).glob("*.txt")):
            texts.append(path.read_text())
            labels.append(name)
    at_once = classification_report(labels, [p["label"] for p in classifier.predict(texts, 1)], classifier.class_names)
    assert report["confusion_matrix"] == at_once["confusion_matrix"]


# === Downloads ===

def test_a_download_draws_its_mib_on_a_terminal_only(tmp_path, monkeypatch):
    from toolkit.data.archives import download

    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * (12 << 10))  # 3 MiB: three chunks
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    download(source.as_uri(), tmp_path / "on_terminal.bin")
    assert (tmp_path / "on_terminal.bin").read_bytes() == source.read_bytes()
    assert re.fullmatch(r"  3\.0/3\.0 MiB \[={30}\] 100% [\d,.]+/s", last_bar(terminal)), terminal.getvalue()
    assert terminal.getvalue().endswith("\r")  # erased once done

    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    download(source.as_uri(), tmp_path / "in_a_pipe.bin")
    assert pipe.getvalue() == f"Downloading {source.as_uri()} -> {tmp_path / 'in_a_pipe.bin'}\n"


# === Encoding a caption set's images once ===

def test_caption_features_are_encoded_under_a_bar(caption_data, tmp_path, monkeypatch):
    import keras

    from toolkit.data.captions import load
    from toolkit.tasks.captioning import TrainConfig, image_table

    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "cache"))
    config = TrainConfig(data_dir=str(caption_data), encoder="cifar_resnet8", image_size=16)
    images = load(caption_data)["train"]
    encoder = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3, strides=4)])
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # training's own stderr: the default bar
    table = image_table(config, "train", images, encoder)
    n = len(images)
    assert len(table) == n
    assert re.fullmatch(rf"  {n}/{n} images encoded \[={{30}}\] 100% [\d,]+\.\d/s", last_bar(terminal))

    calls = []
    image_table(config, "validation", load(caption_data)["validation"], encoder,
                on_progress=lambda step, total: calls.append((step, total)))
    assert sum(step for step, _ in calls) == len(load(caption_data)["validation"])
    calls.clear()
    image_table(config, "train", images, encoder, on_progress=lambda step, total: calls.append(step))
    assert calls == []  # read from the cache: nothing to encode
