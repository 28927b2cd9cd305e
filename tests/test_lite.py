"""The light path: LiteRT forms written by `toolkit export`, answered without TensorFlow, equal to the SavedModel's answers."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import SHARED_DATA, hostile, needs_data, one_error_line
from toolkit.errors import ToolkitError
from toolkit.lite import LITERT_DIR, choose_runtime, lite_dir

# A fresh interpreter: the three commands through their models' LiteRT forms, then what got imported.
WITHOUT_TENSORFLOW = """
import json, sys
from click.testing import CliRunner
from cli.main import toolkit
answers = [CliRunner().invoke(toolkit, json.loads(args)).stdout for args in sys.argv[1:]]
print(json.dumps({"answers": answers, "imported": sorted(m for m in ("tensorflow", "keras", "jax", "torch")
                                                         if m in sys.modules)}))
"""


def answers_of(args, runtime):
    result = CliRunner().invoke(toolkit, [*args, "--runtime", runtime, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_same_answers(light, full, atol=1e-5):
    """Equal answers but for the last digits of the probabilities (float32 arithmetic of two runtimes)."""
    assert len(light) == len(full) and light
    for a, b in zip(light, full):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert abs(a[key] - b[key]) <= atol, (key, a, b)
            elif key == "top_k":
                assert [t["label"] for t in a[key]] == [t["label"] for t in b[key]]
                assert np.allclose([t["probability"] for t in a[key]], [t["probability"] for t in b[key]], atol=atol)
            else:
                assert a[key] == b[key], (key, a, b)


def test_exports_carry_their_litert_form(tiny_model, tiny_image_model, tiny_forecaster):
    for version in (tiny_model / "1", tiny_image_model / "1", tiny_forecaster[1] / "1"):
        folder = lite_dir(version)
        assert folder == version / LITERT_DIR
        assert (folder / "model.tflite").read_bytes()[4:8] == b"TFL3"  # the flatbuffer's file identifier
        assert json.loads((folder / "litert.json").read_text())["signature"] == "serving_default"
        assert choose_runtime(version) == "litert" and choose_runtime(version, "tensorflow") == "tensorflow"


def test_text_answers_agree(tiny_model, text_data):
    files = sorted(str(p) for p in (text_data / "test").rglob("*.txt"))
    light = answers_of(["predict", *files, "--model", str(tiny_model)], "litert")
    assert_same_answers(light, answers_of(["predict", *files, "--model", str(tiny_model)], "tensorflow"))


def test_image_answers_agree(tiny_image_model, image_data, photos):
    files = sorted(str(p) for p in (image_data / "test").rglob("*.png")) + [str(p) for p in photos.values()]
    args = ["classify", *files, "--model", str(tiny_image_model), "--top-k", "3"]
    assert_same_answers(answers_of(args, "litert"), answers_of(args, "tensorflow"))


def test_forecasts_agree(tiny_forecaster):
    _, model, csv = tiny_forecaster
    args = ["forecast", str(csv), "--steps", "10", "--model", str(model)]
    assert_same_answers(answers_of(args, "litert"), answers_of(args, "tensorflow"), atol=1e-3)


def test_predict_classify_and_forecast_answer_without_tensorflow_or_keras(tiny_model, tiny_image_model,
                                                                          tiny_forecaster, text_data, image_data):
    review = str(next((text_data / "test" / "pos").glob("*.txt")))
    image = str(next((image_data / "test" / "red").glob("*.png")))
    commands = [["predict", review, "--model", str(tiny_model)],
                ["classify", image, "--model", str(tiny_image_model)],
                ["forecast", str(tiny_forecaster[2]), "--model", str(tiny_forecaster[1])]]
    out = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, *map(json.dumps, commands)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["imported"] == []
    for args, answer in zip(commands, result["answers"]):
        assert answer == CliRunner().invoke(toolkit, [*args, "--runtime", "tensorflow"]).stdout


def test_the_python_api_chooses_the_runtime(tiny_image_model, image_data):
    import toolkit as api

    image = next((image_data / "test" / "blue").glob("*.png"))
    light, full = api.load(str(tiny_image_model)), api.load(str(tiny_image_model), runtime="tensorflow")
    assert (light.runtime, full.runtime) == ("litert", "tensorflow")
    assert_same_answers(light.predict([image, image.read_bytes(), np.zeros((5, 7, 3))]),
                        full.predict([image, image.read_bytes(), np.zeros((5, 7, 3))]))
    with pytest.raises(ToolkitError, match="runtime must be one of"):
        api.load(str(tiny_image_model), runtime="tflite")


def test_bad_images_are_refused_alike(tiny_image_model, tmp_path):
    cases = hostile(tmp_path)
    for runtime in ("litert", "tensorflow"):
        result = CliRunner().invoke(toolkit, ["classify", *(str(tmp_path / name) for name in cases), "--model", str(tiny_image_model),
                                              "--runtime", runtime])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == len(cases), (runtime, result.stderr)


def test_export_litert_alone(tiny_image_run, tmp_path, image_data):
    result = CliRunner().invoke(toolkit, ["export", str(tiny_image_run), "--name", "colors", "--to", str(tmp_path),
                                          "--format", "litert"])
    assert result.exit_code == 0, result.output
    version = tmp_path / "colors" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["litert.json", "model.tflite", "toolkit.json"]
    image = str(next((image_data / "test" / "green").glob("*.png")))
    answer = CliRunner().invoke(toolkit, ["classify", image, "--model", str(tmp_path / "colors")])
    assert answer.exit_code == 0 and answer.stdout.startswith(image)
    refused = CliRunner().invoke(toolkit, ["classify", image, "--model", str(version), "--runtime", "tensorflow"])
    assert "LiteRT model only" in one_error_line(refused)
    again = CliRunner().invoke(toolkit, ["export", str(tiny_image_run), "--name", "colors", "--to", str(tmp_path),
                                         "--format", "litert", "--version", "1"])
    assert "never overwritten" in one_error_line(again)


def fingerprint(folder):
    """{relative path: sha256} of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_into_adds_the_litert_form_and_leaves_the_savedmodel_untouched(tiny_forecaster, tiny_image_run, tmp_path):
    run, model, _ = tiny_forecaster
    version = tmp_path / "sales" / "1"
    shutil.copytree(model / "1", version)
    shutil.rmtree(version / LITERT_DIR)
    before = fingerprint(version)
    result = CliRunner().invoke(toolkit, ["export", str(run), "--into", str(version)])
    assert result.exit_code == 0, result.output
    after = fingerprint(version)
    assert {k: v for k, v in after.items() if not k.startswith(str(LITERT_DIR))} == before
    assert (version / LITERT_DIR / "model.tflite").read_bytes() == (model / "1" / LITERT_DIR / "model.tflite").read_bytes()
    again = CliRunner().invoke(toolkit, ["export", str(run), "--into", str(version)])
    assert "never overwritten" in one_error_line(again)
    other = CliRunner().invoke(toolkit, ["export", str(tiny_image_run), "--into", str(version)])
    assert "image_classifier" in one_error_line(other)


def test_runtime_refusals(tiny_model, tiny_translator, tmp_path, text_data):
    review = str(next((text_data / "test" / "neg").glob("*.txt")))
    bare = tmp_path / "bare" / "1"
    shutil.copytree(tiny_model / "1", bare)
    shutil.rmtree(bare / LITERT_DIR)
    assert CliRunner().invoke(toolkit, ["predict", review, "--model", str(bare)]).exit_code == 0  # auto: TensorFlow
    no_form = CliRunner().invoke(toolkit, ["predict", review, "--model", str(bare), "--runtime", "litert"])
    assert "no LiteRT form" in one_error_line(no_form)
    translator = CliRunner().invoke(toolkit, ["translate", "a dog", "--model", str(tiny_translator),
                                              "--runtime", "litert"])
    assert "this kind of model has no LiteRT form" in one_error_line(translator)


@pytest.mark.parametrize("damage", ["flatbuffer", "description"])
def test_a_broken_litert_form_is_one_line(tiny_image_model, image_data, tmp_path, damage):
    version = tmp_path / "colors" / "1"
    shutil.copytree(tiny_image_model / "1", version)
    target = version / LITERT_DIR / ("model.tflite" if damage == "flatbuffer" else "litert.json")
    target.write_bytes(target.read_bytes()[:100])
    image = str(next((image_data / "test" / "red").glob("*.png")))
    result = CliRunner().invoke(toolkit, ["classify", image, "--model", str(version)])
    assert "LiteRT" in one_error_line(result)
    assert CliRunner().invoke(toolkit, ["classify", image, "--model", str(version), "--runtime", "tensorflow"]).exit_code == 0


def test_models_and_version_name_the_runtime(tiny_image_model, tiny_translator, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_MODELS_DIR", f"{tiny_image_model.parent}:{tiny_translator.parent}")
    result = CliRunner().invoke(toolkit, ["models", "--json"])
    runtimes = {r["name"]: r["runtime"] for r in map(json.loads, result.stdout.splitlines())}
    assert runtimes[tiny_image_model.name] == "litert" and runtimes[tiny_translator.name] == "tensorflow"
    assert "LiteRT runtime" in CliRunner().invoke(toolkit, ["--version"]).stdout


# === The shipped models on the full test splits (slow: `pytest -m slow tests/test_lite.py`) ===

@pytest.mark.slow
@needs_data("imdb")
def test_all_imdb_test_reviews_get_the_same_labels_on_both_runtimes():
    import toolkit as api
    from toolkit.data import imdb

    test = imdb.find_root(str(SHARED_DATA / "imdb")) / "test"
    texts = [p.read_bytes().decode("utf-8", "replace") for p in sorted(test.glob("*/*.txt"))]
    assert len(texts) == 25_000
    light = api.load("sentiment", runtime="litert").predict(texts)
    full = api.load("sentiment", runtime="tensorflow").predict(texts)
    assert [a["label"] for a in light] == [b["label"] for b in full]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(light, full)) <= 1e-4


@pytest.mark.slow
@needs_data("cifar10")
def test_all_cifar10_test_jpegs_get_the_same_top1_on_both_runtimes():
    import tarfile

    import toolkit as api

    with tarfile.open(SHARED_DATA / "cifar10" / "cifar10-jpeg.tar.gz") as archive:
        test = [(m.name.split("/")[-2], archive.extractfile(m).read()) for m in archive
                if m.isfile() and "/test/" in m.name]
    assert len(test) == 10_000
    truth, images = zip(*test)
    light = api.load("cifar10_resnet", runtime="litert").predict(list(images))
    full = api.load("cifar10_resnet", runtime="tensorflow").predict(list(images))
    same = sum(a["label"] == b["label"] for a, b in zip(light, full))
    assert same >= 0.999 * len(truth)
    accuracy = [sum(a["label"] == t for a, t in zip(answers, truth)) / len(truth) for answers in (light, full)]
    assert abs(accuracy[0] - accuracy[1]) <= 0.0005 and accuracy[0] > 0.89


def test_a_model_that_does_not_convert_is_exported_with_a_note(tiny_run, tmp_path, monkeypatch, capsys):
    import toolkit.lite.recurrent
    from toolkit.tasks import export_runs

    def refuse(models):
        raise ValueError("cell 'xlstm' is not covered")

    monkeypatch.setattr(toolkit.lite.recurrent, "classifier_function", refuse)
    version = export_runs([tiny_run], tmp_path, "sentiment", 1)
    assert (version / "saved_model.pb").is_file() and lite_dir(version) is None
    note = capsys.readouterr().err.strip().splitlines()
    assert note == ["Note: no LiteRT form written (cell 'xlstm' is not covered); the SavedModel answers through "
                    "TensorFlow"]
    assert choose_runtime(version) == "tensorflow"
