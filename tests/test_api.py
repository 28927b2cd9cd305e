"""The Python API as users call it: `toolkit.load(...)` and what its predictors answer, on the shipped models."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import toolkit
from cli.main import toolkit as command_line
from tests.helpers import REPO

GOOD = "One of the best films I have seen in years. Brilliant acting, a moving story and a wonderful score."
BAD = "A dull, badly acted mess. The plot makes no sense and the dialogue is awful. Avoid it."


def png_bytes(array):
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Three lossless pictures (so a file and its pixels are the same image), as files, bytes and arrays."""
    rng = np.random.default_rng(0)
    arrays = [np.repeat(np.linspace(0, 255, 40, dtype=np.uint8)[None, :, None], 30, axis=0).repeat(3, axis=2),
              rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
              np.full((50, 20, 3), (40, 160, 60), np.uint8)]
    folder = tmp_path_factory.mktemp("pictures")
    paths = []
    for i, array in enumerate(arrays):
        paths.append(folder / f"picture{i}.png")
        paths[-1].write_bytes(png_bytes(array))
    return paths, arrays


def test_import_toolkit_is_cheap_and_load_imports_tensorflow_on_first_use():
    code = ("import sys, toolkit; print(toolkit.__version__, callable(toolkit.load), "
            "issubclass(toolkit.ToolkitError, Exception), 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == [toolkit.__version__, "True", "True", "False", "False"]


def test_a_model_by_name_by_folder_and_by_version_is_the_same_model():
    by_name = toolkit.load("sentiment")
    assert toolkit.load(REPO / "saved_models" / "sentiment").model_dir == by_name.model_dir
    assert toolkit.load(str(by_name.model_dir)).model_dir == by_name.model_dir
    assert by_name.model_dir.parent.name == "sentiment" and by_name.model_dir.name.isdigit()


def test_text_classifier_answers_plain_python_in_order():
    model = toolkit.load("sentiment")
    answers = model.predict([GOOD, BAD, GOOD])
    assert [a["label"] for a in answers] == ["pos", "neg", "pos"]
    assert all(type(a["label"]) is str and type(a["probability"]) is float and 0.5 <= a["probability"] <= 1
               for a in answers)
    assert answers[0] == answers[2]
    assert model.predict(GOOD) == answers[:1]  # a string is a list of one
    json.dumps(answers, allow_nan=False)


def test_images_as_paths_bytes_and_arrays_get_the_same_answers(pictures):
    paths, arrays = pictures
    model = toolkit.load("cifar10_resnet")
    by_path = model.predict([str(p) for p in paths])
    assert all(set(a) == {"label", "probability", "top_k"} and a["label"] in model.class_names for a in by_path)
    assert model.predict(paths) == by_path  # pathlib paths too
    assert model.predict([p.read_bytes() for p in paths]) == by_path
    assert model.predict(arrays) == by_path  # resized as the serving graph resizes
    assert model.predict(paths[0]) == by_path[:1]
    same_size = np.stack([arrays[1], arrays[1]])
    assert model.predict(same_size) == [by_path[1], by_path[1]]  # a 4-D array is a batch
    assert model.predict(arrays[1].astype(np.float32)) == by_path[1:2]  # floats in [0, 255]
    json.dumps(by_path, allow_nan=False)


def test_a_bad_image_gets_an_error_in_its_place_and_the_others_are_answered(pictures, tmp_path):
    paths, arrays = pictures
    model = toolkit.load("cifar10_resnet")
    good = model.predict(paths[:2])
    (tmp_path / "notes.png").write_text("not a picture")
    items = [paths[0], b"\x89PNG truncated", tmp_path / "missing.png", np.zeros((4, 4, 7)), tmp_path / "notes.png",
             np.full((8, 8), 300.0), 42, paths[1]]
    answers = model.predict(items)
    assert answers[0] == good[0] and answers[-1] == good[1]
    errors = [a.get("error", "") for a in answers[1:-1]]
    assert all(set(a) == {"error"} for a in answers[1:-1]), answers
    assert "image 1: not an image" in errors[0]
    assert "missing.png: no such file" in errors[1]
    assert "image 3: an array of shape (4, 4, 7) is not an image" in errors[2]
    assert "notes.png: not an image" in errors[3]
    assert "image 5: pixel values must be finite numbers in [0, 255]" in errors[4]
    assert "image 6: int is not an image" in errors[5]


def test_translator_and_forecaster_answer_plain_python():
    from toolkit.data import series

    translator = toolkit.load("translator_en_de")
    [answer] = translator.translate("A dog runs on the beach.")
    assert set(answer) == {"translation", "score"} and "Hund" in answer["translation"] and answer["score"] < 0
    assert translator.translate(["A dog runs on the beach."], beam_size=1)[0]["translation"]
    with pytest.raises(toolkit.ToolkitError, match="beam size must be a whole number from 1 to 64"):
        translator.translate("A dog.", beam_size=0)

    forecaster = toolkit.load("forecast_co2")
    co2 = series.co2()
    dated = forecaster.forecast(co2, steps=3)
    undated = forecaster.forecast(list(co2.values), steps=3)  # just the latest values
    assert [r["step"] for r in undated] == [1, 2, 3] and "time" in dated[0]
    assert [r["forecast"] for r in undated] == [r["forecast"] for r in dated]
    with pytest.raises(toolkit.ToolkitError, match="the model needs the last"):
        forecaster.forecast([370.0, 371.0], steps=3)


def test_unknown_models_and_wrong_kinds_are_one_clear_error(tmp_path, monkeypatch):
    from toolkit.tasks import load

    with pytest.raises(toolkit.ToolkitError, match="no model named 'no_such_model'.*TOOLKIT_MODELS_DIR"):
        toolkit.load("no_such_model")
    with pytest.raises(toolkit.ToolkitError, match="no such model"):
        toolkit.load(tmp_path / "nothing" / "here")
    with pytest.raises(toolkit.ToolkitError, match="needs a 'image_classifier' model"):
        load("sentiment", "image_classifier")


def test_the_command_line_answers_what_the_api_answers(pictures):
    paths, _ = pictures
    result = CliRunner().invoke(command_line, ["classify", *map(str, paths), "--json", "--top-k", "5"])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [{k: v for k, v in p.items() if k != "file"} for p in printed] == toolkit.load("cifar10_resnet").predict(paths)


def test_calls_a_caller_gets_wrong_are_one_line_errors(pictures):
    paths, arrays = pictures
    sentiment, classifier = toolkit.load("sentiment"), toolkit.load("cifar10_resnet")
    translator = toolkit.load("translator_en_de")
    wrong = [
        (lambda: sentiment.predict(None), "expected a list of inputs"),
        (lambda: sentiment.predict(5), "expected a list of inputs"),
        (lambda: sentiment.predict([GOOD, 1]), "input 1 is not a string"),
        (lambda: sentiment.predict([GOOD], batch_size=0), "batch size must be a whole number"),
        (lambda: translator.translate([1]), "input 0 is not a string"),
        (lambda: translator.translate(GOOD, length_penalty=-50), "length penalty must be a number from 0 to 10"),
        (lambda: translator.translate(GOOD, beam_size=2.5), "beam size must be a whole number"),
        (lambda: classifier.predict(None), "expected images"),
        (lambda: classifier.predict({"a": paths[0]}), "expected images"),
        (lambda: classifier.predict(paths, batch_size=0), "batch size must be a whole number"),
        (lambda: toolkit.load(3), "a model is given by its name or its folder"),
        (lambda: toolkit.load(None), "a model is given by its name or its folder"),
    ]
    for call, message in wrong:
        with pytest.raises(toolkit.ToolkitError, match=message):
            call()


def test_one_image_in_any_container_is_one_answer(pictures):
    paths, arrays = pictures
    classifier = toolkit.load("cifar10_resnet")
    [expected] = classifier.predict(paths[1])
    assert classifier.predict(bytearray(paths[1].read_bytes())) == [expected]  # bytes of one image, not 1 per byte
    assert classifier.predict(memoryview(paths[1].read_bytes())) == [expected]
    assert classifier.predict(np.array([str(p) for p in paths])) == classifier.predict(paths)  # an array of paths
    assert classifier.predict(p for p in paths) == classifier.predict(paths)  # a generator
    assert classifier.predict([]) == []


def test_a_local_folder_named_like_a_model_does_not_hide_it(tmp_path, monkeypatch):
    """`toolkit predict` with no --model works from any folder, even one holding a folder `sentiment/`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sentiment").mkdir()
    (tmp_path / "review.txt").write_text(GOOD)
    result = CliRunner().invoke(command_line, ["predict", "review.txt"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\t")[1] == "pos"
    assert toolkit.load("sentiment").model_dir.parent == REPO / "saved_models" / "sentiment"
