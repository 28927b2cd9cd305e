"""Run folders, exports and served models under careless or hostile use: one clear line, nothing corrupted."""

import dataclasses
import json
import shutil

import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import NEGATIVE, POSITIVE, one_error_line, write_reviews
from toolkit.atomic import folder_lock
from toolkit.errors import ToolkitError
from toolkit.tasks.text_classification import train


@pytest.fixture
def runner():
    return CliRunner()


# === Run folders ===

def test_an_out_folder_that_is_no_run_is_refused_and_left_alone(tiny_config, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ToolkitError, match="holds no training run"):
        train(tiny_config, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_second_training_into_one_folder_fails_at_once(tiny_config, tmp_path):
    with folder_lock(tmp_path / "run", "busy"):  # as another process training there would hold it
        with pytest.raises(ToolkitError, match="being trained by another process"):
            train(tiny_config, tmp_path / "run")


@pytest.mark.parametrize("options, message", [
    (["--units", "0"], "units must be a positive number"),
    (["--layers", "0", "--pooling", "last"], "has no last state"),
    (["--naive-bayes"], "use it with num_layers=0"),
    (["--layers", "0", "--naive-bayes", "--regression"], "without --regression"),
    (["--vocabulary-size", "50000"], "at most 46340 with bigram_buckets"),  # found before the vocabulary is built
])
def test_a_bad_option_writes_nothing(runner, text_data, tmp_path, options, message):
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(text_data), "--out", str(tmp_path / "r"),
                                     *options])
    assert message in one_error_line(result)
    assert not (tmp_path / "r").exists()


def test_naive_bayes_on_three_classes_is_one_line_and_writes_no_run(runner, tmp_path):
    import random

    rng = random.Random(2)
    for name, words in (("neg", NEGATIVE), ("pos", POSITIVE), ("mixed", NEGATIVE[:2] + POSITIVE[:2])):
        write_reviews(tmp_path / "data" / "train" / name, words, 10, rng)
    out = tmp_path / "r"
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(tmp_path / "data"), "--layers", "0",
                                     "--naive-bayes", "--out", str(out)])
    assert "--naive-bayes needs two classes; the data has 3" in one_error_line(result)
    assert not (out / "config.json").exists()  # the same --out trains another model afterwards


def test_settings_a_run_predates_are_read_as_it_trained(tmp_path):
    """A config.json written before an option existed (or before the defaults changed) is read with the
    value that run trained with, not today's default: it resumes with the options it was started with."""
    from toolkit.tasks.text_classification import TrainConfig
    from toolkit.training import check_same_settings

    old = dataclasses.replace(TrainConfig(), cell="lstm", bidirectional=False, pooling="last", dropout=0.0,
                              bigram_buckets=0, monitor="val_loss", clip_norm=None)
    stored = {k: v for k, v in old.settings().items() if k not in ("bigram_buckets", "monitor", "crop")}
    (tmp_path / "config.json").write_text(json.dumps({"kind": "text_classifier", "train": stored}))
    assert TrainConfig.from_settings(stored) == old
    before_the_spectral_hash = {k: v for k, v in stored.items() if k != "bigram_hash"}
    assert TrainConfig.from_settings(before_the_spectral_hash).bigram_hash == "vocabulary"
    check_same_settings(tmp_path, old.settings(), defaults=TrainConfig.absent())  # resumes
    with pytest.raises(ToolkitError, match=r"other settings \(monitor\)"):
        check_same_settings(tmp_path, dataclasses.replace(old, monitor=None).settings(),
                            defaults=TrainConfig.absent())

    # One from before the spectral hash and without bigrams: the hash is moot, so it resumes with today's default.
    (tmp_path / "config.json").write_text(json.dumps({"kind": "text_classifier", "train": before_the_spectral_hash}))
    assert old.unused_settings() == ("bigram_hash",)
    check_same_settings(tmp_path, old.settings(), may_change=old.unused_settings(), defaults=TrainConfig.absent())
    with pytest.raises(ToolkitError, match=r"other settings \(bigram_hash\)"):
        check_same_settings(tmp_path, old.settings(), defaults=TrainConfig.absent())


def test_a_resumed_run_refuses_other_data_and_cleans_leftovers(tiny_config, text_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(text_data, data)
    config = dataclasses.replace(tiny_config, data_dir=str(data), epochs=1)
    run_dir = tmp_path / "run"
    train(config, run_dir)
    # What killed writes leave behind: temporary files beside the best model and the checkpoint.
    leftovers = [run_dir / ".best.keras.abcd1234.tmp.keras", run_dir / "checkpoint" / ".epoch-0002.keras.x.tmp.keras"]
    for path in leftovers:
        path.write_bytes(b"half a model")

    (data / "train" / "neg" / "extra.txt").write_text("One more dull review.", encoding="utf-8")
    with pytest.raises(ToolkitError, match="other data") as error:
        train(config, run_dir)
    assert "sha256" in str(error.value)
    (data / "train" / "neg" / "extra.txt").unlink()

    for split in ("train", "test"):
        shutil.copytree(data / split / "neg", data / split / "neutral")
    with pytest.raises(ToolkitError, match="class_names"):
        train(config, run_dir)
    for split in ("train", "test"):
        shutil.rmtree(data / split / "neutral")

    results = train(dataclasses.replace(config, epochs=2), run_dir)  # the same data: it resumes
    assert results["epochs_trained"] == 2
    assert not any(path.exists() for path in leftovers)


# === Exports ===

def test_racing_exports_end_in_one_line_and_leftovers_go(tiny_run, tmp_path):
    from toolkit.tasks import export_runs

    folder = tmp_path / "models" / "m"
    with folder_lock(folder, "busy"):  # another export of this model is running
        with pytest.raises(ToolkitError, match="another export"):
            export_runs([tiny_run], tmp_path / "models", "m", 1)
    (folder / ".1.deadbeef.tmp").mkdir()  # a killed export's temporary folder
    assert export_runs([tiny_run], tmp_path / "models", "m", 1) == folder / "1"
    assert sorted(p.name for p in folder.iterdir()) == ["1"]
    with pytest.raises(ToolkitError, match="never overwritten; export as --version 2"):
        export_runs([tiny_run], tmp_path / "models", "m", 1)


# === Served models whose metadata lies ===

def broken_copy(model, tmp_path, edit):
    version = tmp_path / "model" / "1"
    shutil.copytree(model / "1", version)
    path = version / "assets.extra" / "toolkit.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return version


@pytest.mark.parametrize("edit, message", [
    (lambda meta: [meta], "not a JSON object"),
    (lambda meta: {k: v for k, v in meta.items() if k != "class_names"}, "'class_names' is missing"),
    (lambda meta: {**meta, "class_names": "neg,pos"}, "not a list of strings"),
])
def test_broken_metadata_is_one_line(runner, tiny_model, tmp_path, edit, message, text_data):
    version = broken_copy(tiny_model, tmp_path, edit)
    review = next((text_data / "test" / "pos").iterdir())
    result = runner.invoke(toolkit, ["predict", str(review), "--model", str(version)])
    assert message in one_error_line(result)


def test_a_kind_whose_signatures_the_graph_lacks_is_one_line(runner, tiny_model, tmp_path, photos):
    version = broken_copy(tiny_model, tmp_path, lambda meta: {**meta, "kind": "image_classifier",
                                                              "image_shape": [16, 16, 3]})
    result = runner.invoke(toolkit, ["classify", str(photos["red.jpg"]), "--model", str(version), "--runtime", "tensorflow"])
    assert "no 'predict_pixels' signature" in one_error_line(result)
    result = runner.invoke(toolkit, ["classify", str(photos["red.jpg"]), "--model", str(version)])
    assert "no 'pixels' input" in one_error_line(result)


# === Options and inputs ===

def test_a_nul_byte_in_a_path_from_stdin_sinks_only_that_path(runner, tiny_image_model, photos):
    result = runner.invoke(toolkit, ["classify", "-", "--model", str(tiny_image_model)],
                           input=f"{photos['red.jpg']}\nbad\x00name.jpg\n{photos['red.bmp']}\n")
    assert "NUL byte" in one_error_line(result)
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [str(photos["red.jpg"]),
                                                                            str(photos["red.bmp"])]


def test_top_k_beyond_the_models_list_says_so(runner, tiny_image_model, photos):
    result = runner.invoke(toolkit, ["classify", str(photos["red.jpg"]), "--top-k", "1000", "--json",
                                     "--model", str(tiny_image_model)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert len(record["top_k"]) == 3 and "ranks its top 3 classes" in result.stderr  # three colours


@pytest.mark.parametrize("args", [["predict", "--batch-size", "0", "x.txt"], ["predict", "--batch-size", "-3", "x"],
                                  ["translate", "--length-penalty", "nan", "a dog."],
                                  ["translate", "--length-penalty", "inf", "a dog."],
                                  ["classify", "--top-k", "0", "x.jpg"], ["train", "sentiment", "--out", "r",
                                                                          "--epochs", "0"]])
def test_numeric_options_carry_ranges(runner, args):
    result = runner.invoke(toolkit, args)
    assert result.exit_code == 2 and "Invalid value" in result.stderr, result.output
    assert "Traceback" not in result.output


def test_json_answers_are_strict(capsys):
    from cli.output import echo_answer

    assert not echo_answer({"file": "a.txt", "probability": float("nan")}, "a.txt\tpos\tnan", as_json=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "a.txt: the model answered a non-finite probability" in captured.err
    assert echo_answer({"file": "b.txt", "probability": 0.5}, "unused", as_json=True)
    assert json.loads(capsys.readouterr().out) == {"file": "b.txt", "probability": 0.5}


def test_translate_streams_in_order_and_a_bad_line_sinks_only_itself(runner, tiny_translator, tmp_path,
                                                                      monkeypatch):
    import cli.translate

    monkeypatch.setattr(cli.translate, "CHUNK", 2)  # several chunks from five lines
    path = tmp_path / "lines.txt"
    path.write_bytes(b"a dog runs.\na cat sleeps.\n\xff\xfe not utf-8\na man runs.\na dog sleeps.\n")
    result = runner.invoke(toolkit, ["translate", "--file", str(path), "--json", "--model", str(tiny_translator)])
    assert "line 3 is not UTF-8 text" in one_error_line(result)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["source"] for r in rows] == ["a dog runs.", "a cat sleeps.", "a man runs.", "a dog sleeps."]
    plain = runner.invoke(toolkit, ["translate", "--file", str(path), "--model", str(tiny_translator)])
    assert plain.exit_code == 1 and len(plain.stdout.splitlines()) == 5  # a line out for every line in
    assert plain.stdout.splitlines()[2] == ""


def test_progress_shows_on_a_terminal_only():
    import io

    from cli.output import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    pipe, terminal = io.StringIO(), Terminal()
    for stream in (pipe, terminal):
        progress = Progress("images", stream)
        progress.advance(3)
        progress.close()
    assert pipe.getvalue() == ""
    assert "3 images" in terminal.getvalue() and terminal.getvalue().endswith("\r")
