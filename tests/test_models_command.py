"""`toolkit models`: what is found by name, in search order, read from the metadata alone (no TensorFlow)."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import REPO
from toolkit.serving import MODELS_DIR_ENV, model_versions, resolve_model_dir

SHIPPED = REPO / "saved_models"


def fake_model(root, name, version, metadata):
    """ROOT/NAME/VERSION as `toolkit models` sees a model: a saved_model.pb (empty: never loaded) and metadata."""
    folder = root / name / str(version)
    (folder / "assets.extra").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "assets.extra" / "toolkit.json").write_text(
        metadata if isinstance(metadata, str) else json.dumps(metadata), encoding="utf-8")
    return folder


def run_models(*args):
    result = CliRunner().invoke(toolkit, ["models", *args])
    return result, [line for line in result.stdout.splitlines() if line]


def test_the_shipped_models_with_their_headline_scores(monkeypatch):
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    result, lines = run_models()
    assert result.exit_code == 0, result.output
    rows = {row[0]: row for row in (line.split("\t") for line in lines)}
    assert sorted(rows) == sorted(p.name for p in SHIPPED.iterdir() if model_versions(p))
    assert all(len(row) == 7 for row in rows.values())
    newest, *older = model_versions(SHIPPED / "cifar10_resnet")
    version = f"{newest} ({', '.join(map(str, older))})" if older else str(newest)
    assert rows["cifar10_resnet"][1:5] == [version, "image_classifier", "litert",
                                           "accuracy 0.8955, accuracy_flip_averaged 0.9049"]
    assert rows["translator_en_de"][2:5] == ["translator", "tensorflow", "bleu 36.59, chrf 61.32"]  # no LiteRT form
    assert rows["captioner"][4] == "bleu_4 20.49, cider_d 51.85"  # the beam size it serves with (3)
    assert rows["forecast_co2"][3:5] == ["litert", rows["forecast_co2"][4]] and rows["forecast_co2"][4].startswith(
        "mae 0.6027")  # the model's, not the baselines'
    assert rows["sentiment"][3:5] == ["litert", "accuracy 0.9164"]
    assert rows["sentiment"][5:] == [str(SHIPPED / "sentiment" / "MODEL_CARD.md"),
                                     str(resolve_model_dir(SHIPPED / "sentiment"))]


def test_json_is_one_strict_object_per_model(monkeypatch):
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    result, lines = run_models("--json")
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in map(json.loads, lines)}
    versions = model_versions(SHIPPED / "cifar10_resnet")
    assert records["cifar10_resnet"] == {
        "name": "cifar10_resnet", "version": versions[0], "versions": versions, "kind": "image_classifier",
        "runtime": "litert", "test": {"accuracy": 0.8955, "accuracy_flip_averaged": 0.9049},
        "card": str(SHIPPED / "cifar10_resnet" / "MODEL_CARD.md"),
        "folder": str(SHIPPED / "cifar10_resnet" / str(versions[0]))}
    assert records["sentiment"]["test"] == {"accuracy": pytest.approx(0.9164, abs=1e-4)}


def test_an_ensemble_shows_its_members_scores(tmp_path, monkeypatch):
    """An ensemble has no test score of its own in its metadata (its card has it): each member's is shown."""
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    fake_model(tmp_path, "trio", 1, {"kind": "text_classifier", "ensemble": [
        {"run": f"runs/m{i}", "metrics": {"test": {"accuracy": accuracy}}} for i, accuracy in enumerate([0.87, 0.88])]})
    result, lines = run_models()
    assert result.exit_code == 0, result.output
    rows = {row[0]: row for row in (line.split("\t") for line in lines)}
    assert rows["trio"][4] == "members: accuracy 0.87; accuracy 0.88"
    result, lines = run_models("--json")
    records = {r["name"]: r for r in map(json.loads, lines)}
    assert [m["accuracy"] for m in records["trio"]["test"]["members"]] == [0.87, 0.88]


def test_the_search_path_in_order_newest_versions_and_models_of_other_tools(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    fake_model(first, "sentiment", 1, {"kind": "text_classifier", "metrics": {"test": {"accuracy": 0.5}}})
    for version, mae in ((1, 0.25), (3, 0.125)):
        fake_model(second, "mine", version, {"kind": "text_classifier", "metrics": {"test": {"mae": mae}}})
    (second / "mine" / "MODEL_CARD.md").write_text("# mine")
    (fake_model(second, "other", 1, "{}") / "assets.extra" / "toolkit.json").unlink()  # a SavedModel not of ours
    (second / "notes").mkdir()  # no versions: not a model
    monkeypatch.setenv(MODELS_DIR_ENV, os.pathsep.join([str(first), str(tmp_path / "missing"), str(second)]))
    result, lines = run_models()
    assert result.exit_code == 0, result.output
    rows = {row[0]: row for row in (line.split("\t") for line in lines)}
    assert rows["sentiment"][4:] == ["accuracy 0.5", "-", str(first / "sentiment" / "1")]  # the first of a name wins
    assert rows["mine"][1:] == ["3 (1)", "text_classifier", "tensorflow", "mae 0.125",
                                str(second / "mine" / "MODEL_CARD.md"), str(second / "mine" / "3")]
    assert rows["other"][1:5] == ["1", "-", "tensorflow", "-"]
    assert "notes" not in rows and "cifar10_resnet" in rows  # the shipped ones come after


def test_a_broken_model_is_reported_and_the_others_are_still_listed(tmp_path, monkeypatch):
    fake_model(tmp_path, "broken", 1, '{"kind": "text_classifier", ')
    fake_model(tmp_path, "odd", 1, {"kind": "translator", "metrics": {"test": ["not", "scores"]}})
    fake_model(tmp_path, "good", 1, {"kind": "translator", "metrics": {"test": {"bleu": 20.0, "chrf": float("nan")}}})
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    result, lines = run_models("--json")
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and errors[0].startswith("Error: broken: broken model metadata")
    assert errors[1].startswith("Error: odd: broken model metadata")
    names = [json.loads(line)["name"] for line in lines]
    assert "good" in names and "sentiment" in names and "broken" not in names
    assert [json.loads(line)["test"] for line in lines if '"good"' in line] == [{"bleu": 20.0}]  # NaN is no score


def test_listing_models_never_imports_tensorflow():
    driver = ("import sys\nfrom cli.main import toolkit\n"
              "try:\n    toolkit(['models', '--json'])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
              "heavy = sorted(m for m in ('tensorflow', 'keras', 'tensorflow_serving') if m in sys.modules)\n"
              "assert not heavy, heavy\n")
    env = {k: v for k, v in os.environ.items() if k != MODELS_DIR_ENV}
    result = subprocess.run([sys.executable, "-c", driver], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.splitlines()) == len([p for p in SHIPPED.iterdir() if model_versions(p)])
