"""Translation end to end on a toy language pair: training, search, export, the command line."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import one_error_line
from toolkit.atomic import read_json

SENTENCES = ["a big dog sees a cat.", "the man runs.", "a small red ball sleeps now."]


@pytest.fixture
def runner():
    return CliRunner()


def test_training_learns_the_toy_pair(tiny_translation_config, tiny_translation_run, pair_data):
    metrics = read_json(tiny_translation_run / "metrics.json")
    assert metrics["validation"]["bleu"] > 80, metrics  # held-out sentences, translated word for word
    pairs = len(pair_data.read_text(encoding="utf-8").splitlines())
    assert metrics["validation"]["sentences"] == round(pairs * tiny_translation_config.validation_split)
    assert (tiny_translation_run / "source.model").is_file()
    history = (tiny_translation_run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) > 2


def test_export_answers_in_a_fresh_process(tiny_translator):
    """The SavedModel needs TensorFlow and TF Text's ops only, and answers as it does in this process."""
    from toolkit.tasks.translation import Translator

    code = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "out = m.signatures['serving_default'](text=tf.constant(json.loads(sys.argv[2])))\n"
        "greedy = m.signatures['translate'](text=tf.constant(json.loads(sys.argv[2])), "
        "beam_size=tf.constant([1, 1]), length_penalty=tf.constant([1.0, 1.0]))\n"
        "assert not any(name.split('.')[0] in ('toolkit', 'cli') for name in sys.modules)\n"
        "print(json.dumps([[t.decode() for t in o['translation'].numpy()] for o in (out, greedy)] "
        "+ [out['score'].numpy().tolist()]))\n"
    )
    sentences = ["a cat sees a big dog.", "a man sleeps now."]
    result = subprocess.run([sys.executable, "-c", code, str(tiny_translator / "1"), json.dumps(sentences)],
                            capture_output=True, text=True, cwd="/", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    beam, greedy, scores = json.loads(result.stdout.strip().splitlines()[-1])
    translator = Translator(tiny_translator)
    here = translator.translate(sentences)  # serving_default: the exported beam size and length penalty
    assert beam == [t["translation"] for t in here]
    assert scores == pytest.approx([t["score"] for t in here], abs=1e-4)
    assert all(s <= 0.0 for s in scores), scores  # log-probabilities
    assert greedy == [t["translation"] for t in translator.translate(sentences, beam_size=1, length_penalty=1.0)]


def test_export_matches_the_run_graph(tiny_translation_run, tiny_translator):
    import keras

    from toolkit.preprocessing.sequences import load_tokenizer
    from toolkit.tasks.translation import TranslationGraph, Translator, translate_all

    model = keras.saving.load_model(tiny_translation_run / "best.keras", compile=False)
    graph = TranslationGraph(model, load_tokenizer(tiny_translation_run, "source"),
                             load_tokenizer(tiny_translation_run, "target"))
    sentences = SENTENCES + ["dog"] * 4  # a batch of 7: another size than the export was traced with
    expected = translate_all(lambda t: graph.translate(t, 3, 1.0), sentences)
    got = Translator(tiny_translator).translate(sentences, beam_size=3, batch_size=5)
    assert [g["translation"] for g in got] == [e["translation"] for e in expected]
    assert [g["score"] for g in got] == pytest.approx([e["score"] for e in expected], abs=1e-4)


def test_beam_is_never_worse_than_greedy_on_its_own_score(tiny_translator):
    from toolkit.tasks.translation import Translator

    translator = Translator(tiny_translator)
    sentences = ["dog cat man ball.", "a a a a a a.", "now now red."]
    greedy = translator.translate(sentences, beam_size=1)
    beam = translator.translate(sentences, beam_size=8)
    for g, b in zip(greedy, beam):
        assert b["score"] >= g["score"] - 1e-5


def test_translate_arguments_file_and_stdin(runner, tiny_translator, tmp_path):
    """The command answers what the exported model answers, from arguments, a file (blank lines kept) and stdin."""
    from toolkit.tasks.translation import Translator

    translator = Translator(tiny_translator)
    sentences = [SENTENCES[0], "a dog runs.", "a cat sleeps."]
    beam = dict(zip(sentences, (t["translation"] for t in translator.translate(sentences))))
    greedy = translator.translate(["a man runs."], beam_size=1)[0]["translation"]
    assert all(beam.values()) and greedy

    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_translator), *sentences[:2]])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [beam[s] for s in sentences[:2]]

    lines = tmp_path / "lines.txt"
    lines.write_text("a dog runs.\n\n   \na cat sleeps.\n", encoding="utf-8")
    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_translator), "--file", str(lines), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["translation"] for r in rows] == [beam["a dog runs."], "", "", beam["a cat sleeps."]]
    assert rows[1]["source"] == "" and rows[1]["score"] == 0.0

    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_translator), "--beam-size", "1"],
                           input="a man runs.\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [greedy]


def test_translate_hostile_sentences(runner, tiny_translator):
    from toolkit.tasks.translation import LENGTH_CAP

    long_line = " ".join(["dog"] * 2000)
    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_translator), "--json",
                                     "😀 🚀 中文 русский", long_line, "dog\x00cat"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert len(rows[1]["translation"].split()) <= LENGTH_CAP  # bounded, however long the input
    assert "sentence 2 has 2000 words" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case, message", [("missing", "no such file"), ("binary", "binary file"),
                                           ("folder", "is a folder"), ("empty", "empty file")])
def test_translate_bad_files(runner, tiny_translator, tmp_path, case, message):
    path = tmp_path / "input.txt"
    if case == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    elif case == "folder":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_translator), "--file", str(path)])
    assert f"{path}: {message}" in one_error_line(result)


def test_translate_refuses_other_models(runner, tiny_model, tmp_path):
    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_model), "a dog."])
    assert result.exit_code == 1
    assert "holds a 'text_classifier' model" in result.stderr
    result = runner.invoke(toolkit, ["translate", "--model", str(tmp_path), "a dog."])
    assert result.exit_code == 1 and "is not a model" in result.stderr


def test_translate_usage_errors(runner, tiny_translator, tmp_path):
    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_translator), "--beam-size", "0", "a dog."])
    assert result.exit_code == 2 and "Invalid value for '--beam-size'" in result.stderr, result.output
    result = runner.invoke(toolkit, ["translate", "--model", str(tiny_translator), "--file", "x.txt", "a dog."])
    assert result.exit_code == 2 and "give sentences or --file, not both" in result.stderr, result.output


def test_evaluate_translation_on_a_pair_file(runner, tiny_translator, pair_data):
    result = runner.invoke(toolkit, ["evaluate", "translation", "--model", str(tiny_translator),
                                     "--pairs", str(pair_data), "--beam-size", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    pairs = len(pair_data.read_text(encoding="utf-8").splitlines())
    assert report["sentences"] == pairs and report["beam_size"] == 2
    assert report["bleu"] > 80 and report["chrf"] > 80


def test_export_refuses_an_existing_version(runner, tiny_translation_run, tiny_translator):
    result = runner.invoke(toolkit, ["export", str(tiny_translation_run), "--name", "toy_en_de",
                                     "--to", str(tiny_translator.parent), "--version", "1"])
    assert result.exit_code == 1
    assert "already exists" in result.stderr


def test_train_resumes_a_finished_run_without_retraining(tiny_translation_config, tiny_translation_run):
    """Training a finished run again trains no epoch, and scores the same model the same way."""
    from toolkit.tasks.translation import train

    best = (tiny_translation_run / "best.keras").stat().st_mtime_ns
    history = (tiny_translation_run / "history.csv").read_text()
    before = read_json(tiny_translation_run / "metrics.json")
    results = train(tiny_translation_config, tiny_translation_run)
    assert (tiny_translation_run / "best.keras").stat().st_mtime_ns == best
    assert (tiny_translation_run / "history.csv").read_text() == history
    assert results["epochs_trained"] == before["epochs_trained"]
    assert results["validation"]["bleu"] == pytest.approx(before["validation"]["bleu"], abs=1e-6)


def test_init_from_goes_on_from_another_runs_model_and_tokenisers(runner, tiny_translation_run, pair_data, tmp_path):
    """--init-from: the new run starts from the start's best weights, with its tokenisers and architecture."""
    import keras

    from toolkit.models.translator import build_translator  # noqa: F401  (registers the layers for loading)

    out = tmp_path / "annealed"
    result = runner.invoke(toolkit, ["train", "translation", "--pairs", str(pair_data), "--init-from",
                                     str(tiny_translation_run), "--validation-split", "0.1", "--epochs", "1",
                                     "--learning-rate", "1e-9", "--beam-size", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("source.model", "target.model"):
        assert (out / name).read_bytes() == (tiny_translation_run / name).read_bytes()
    config = read_json(out / "config.json")["train"]
    assert config["units"] == 32 and config["vocabulary_size"] == 40 and config["init_from"] == str(tiny_translation_run)
    start = keras.saving.load_model(tiny_translation_run / "best.keras", compile=False).get_weights()
    trained = keras.saving.load_model(out / "best.keras", compile=False).get_weights()
    assert len(trained) == len(start)
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(start, trained))  # a step of 1e-9 moves nothing
    assert read_json(out / "metrics.json")["validation"]["bleu"] > 80  # the start's translations, not a new model's


@pytest.mark.parametrize("args, message", [
    (["--units", "64"], "units=64 differs from 32"),
    (["--tokenizer", "words"], "tokenizer='words' differs from 'sentencepiece'"),
])
def test_init_from_refuses_another_architecture(runner, tiny_translation_run, pair_data, tmp_path, args, message):
    out = tmp_path / "run"
    result = runner.invoke(toolkit, ["train", "translation", "--pairs", str(pair_data), "--init-from",
                                     str(tiny_translation_run), "--out", str(out), *args])
    assert result.exit_code == 1 and message in one_error_line(result)
    assert not out.exists()


def test_init_from_refuses_what_is_no_translation_run(runner, pair_data, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"kind": "text_classifier", "train": {}}))
    for start, message in ((tmp_path, "is not a training run folder"), (tmp_path / "run", "not a translator")):
        result = runner.invoke(toolkit, ["train", "translation", "--pairs", str(pair_data), "--init-from", str(start),
                                         "--out", str(tmp_path / "out")])
        assert result.exit_code == 1 and message in one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_ensemble_export(tiny_translation_run, tiny_translator, tmp_path):
    """Two identical members average to the single model; members with other tokenisers are refused."""
    import shutil

    from toolkit.errors import ToolkitError
    from toolkit.preprocessing.sequences import make_tokenizer
    from toolkit.tasks.translation import Translator, export_run

    twin = tmp_path / "twin"
    shutil.copytree(tiny_translation_run, twin)
    export_run([tiny_translation_run, twin], tmp_path / "models", "pair", 1)
    ensemble, single = Translator(tmp_path / "models" / "pair"), Translator(tiny_translator)
    assert len(ensemble.metadata["ensemble"]) == 2
    got, expected = ensemble.translate(SENTENCES, beam_size=2), single.translate(SENTENCES, beam_size=2)
    assert [g["translation"] for g in got] == [e["translation"] for e in expected]
    assert [g["score"] for g in got] == pytest.approx([e["score"] for e in expected], abs=1e-4)

    make_tokenizer("sentencepiece", ["ganz andere Sätze", "mit anderen Wörtern"] * 5, 30).save(twin, "target")
    with pytest.raises(ToolkitError, match="other tokenisers"):
        export_run([tiny_translation_run, twin], tmp_path / "models", "bad", 1)


def test_attention_comes_from_the_search_that_chose_the_words(runner, tiny_translator, tmp_path):
    """`translate_attention` answers what `translate` answers, with one row of weights per target token."""
    from toolkit.tasks.translation import Translator

    translator = Translator(tiny_translator)
    plain = translator.translate(SENTENCES, beam_size=2)
    with_attention = translator.translate(SENTENCES, beam_size=2, attention=True)
    for p, a in zip(plain, with_attention):
        assert a["translation"] == p["translation"] and a["score"] == pytest.approx(p["score"], abs=1e-5)
        assert a["source_tokens"][-1] == "</s>"  # the end token the encoder reads last
        assert a["target_tokens"] and len(a["attention"]) == len(a["target_tokens"])
        weights = np.array(a["attention"])
        assert weights.shape == (len(a["target_tokens"]), len(a["source_tokens"]))
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=2e-3)  # rounded to 4 places
    png = tmp_path / "attention.png"
    result = runner.invoke(toolkit, ["translate", SENTENCES[0], "--model", str(tiny_translator), "--attention-map",
                                     str(png), "--beam-size", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == plain[0]["translation"]
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and min(image.size) > 200
    result = runner.invoke(toolkit, ["translate", "one.", "two.", "--model", str(tiny_translator),
                                     "--attention-map", str(png)])
    assert result.exit_code == 2 and "exactly one SENTENCE" in result.output


def test_an_empty_sentence_has_no_attention_to_draw(runner, tiny_translator, tmp_path):
    from toolkit.tasks.translation import Translator

    [empty, full] = Translator(tiny_translator).translate(["", SENTENCES[0]], attention=True)
    assert empty == {"translation": "", "score": 0.0, "source_tokens": [], "target_tokens": [], "attention": []}
    assert full["target_tokens"] and full["attention"]
    result = runner.invoke(toolkit, ["translate", "", "--model", str(tiny_translator), "--attention-map",
                                     str(tmp_path / "a.png")])
    assert "nothing to draw" in one_error_line(result) and not (tmp_path / "a.png").exists()
