import json
import math
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import NEGATIVE, POSITIVE, REPO, assert_one_error_line_per_bad_file, files_per_class, write_reviews


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def reviews(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("The film was wonderful and superb.")
    bad = tmp_path / "bad.txt"
    bad.write_text("The plot was awful, dull.")
    return good, bad


def test_help_does_not_import_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from cli.main import toolkit; "
            "r = CliRunner().invoke(toolkit, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'predict' in r.output; assert 'tensorflow' not in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def the_models_answers(model, texts):
    """(label, probability to 4 places) for each text, straight from the exported model."""
    from toolkit.tasks.text_classification import TextClassifier

    return [(a["label"], f"{a['probability']:.4f}") for a in TextClassifier(model).predict(texts)]


def test_predict_files_and_stdin(runner, tiny_model, reviews):
    good, bad = reviews
    typed = "Superb, I loved it. Brilliant."
    result = runner.invoke(toolkit, ["predict", str(good), str(bad), "-", "--model", str(tiny_model)], input=typed)
    assert result.exit_code == 0, result.output
    lines = [tuple(line.split("\t")) for line in result.stdout.splitlines()]
    expected = the_models_answers(tiny_model, [good.read_text(), bad.read_text(), typed])
    assert lines == [(name, *answer) for name, answer in zip([str(good), str(bad), "-"], expected)]
    assert all(0.5 <= float(p) <= 1.0 for _, _, p in lines)  # the probability of the label given


def test_predict_json(runner, tiny_model, reviews):
    result = runner.invoke(toolkit, ["predict", "--json", str(reviews[0]), "--model", str(tiny_model / "1")])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record) == {"file", "label", "probability"} and record["file"] == str(reviews[0])
    expected = the_models_answers(tiny_model, [reviews[0].read_text()])[0]
    assert (record["label"], f"{record['probability']:.4f}") == expected


def bad_files(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("  \n\t ")
    (tmp_path / "folder").mkdir()
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("Très mauvais film, ennuyeux à mourir".encode("latin-1"))
    (tmp_path / "huge.txt").write_text("word " * 1_000_000)  # 5 MB
    return {
        "missing.txt": "no such file",
        "empty.txt": "empty file",
        "blank.txt": "only white space",
        "folder": "is a folder",
        "binary.txt": "binary file",
        "latin1.txt": "not UTF-8 text",
        "huge.txt": "too large",
    }


def test_bad_files_get_one_line_each_and_the_good_ones_are_answered(runner, tiny_model, reviews, tmp_path):
    cases = bad_files(tmp_path)
    args = [str(tmp_path / name) for name in cases]
    result = runner.invoke(toolkit, ["predict", *args, str(reviews[0]), "--model", str(tiny_model)])
    assert_one_error_line_per_bad_file(result, cases)
    alone = runner.invoke(toolkit, ["predict", str(reviews[0]), "--model", str(tiny_model)])
    assert alone.exit_code == 0, alone.output
    assert result.stdout == alone.stdout  # the bad files change nothing in the good one's answer


def test_model_that_is_not_a_toolkit_model(runner, reviews, tmp_path):
    import tensorflow as tf

    result = runner.invoke(toolkit, ["predict", str(reviews[0]), "--model", str(tmp_path)])
    assert result.exit_code == 1 and "is not a model" in result.stderr
    module = tf.Module()
    module.f = tf.function(lambda x: x, input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "foreign"))
    result = runner.invoke(toolkit, ["predict", str(reviews[0]), "--model", str(tmp_path / "foreign")])
    assert result.exit_code == 1 and "not one exported by toolkit" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_model_of_another_kind_and_a_broken_model(runner, tiny_model, reviews, tmp_path):
    other = tmp_path / "other" / "1"
    shutil.copytree(tiny_model / "1", other)
    meta = other / "assets.extra" / "toolkit.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "kind": "image_classifier"}))
    result = runner.invoke(toolkit, ["predict", str(reviews[0]), "--model", str(other.parent)])
    assert result.exit_code == 1 and "holds a 'image_classifier' model; this command needs a 'text_classifier' model" in result.stderr

    broken = tmp_path / "broken" / "1"
    shutil.copytree(tiny_model / "1", broken)
    (broken / "saved_model.pb").write_bytes(b"\x00not a protobuf")
    result = runner.invoke(toolkit, ["predict", str(reviews[0]), "--model", str(broken), "--runtime", "tensorflow"])
    assert result.exit_code == 1 and "cannot load the model" in result.stderr
    assert "Traceback" not in result.output
    # Its LiteRT form is whole, and answers by default (a broken LiteRT form: tests/test_lite.py).
    assert runner.invoke(toolkit, ["predict", str(reviews[0]), "--model", str(broken)]).exit_code == 0


def test_train_refuses_unusable_folders(runner, tmp_path):
    (tmp_path / "none" / "train").mkdir(parents=True)
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "has no class folders" in result.stderr
    (tmp_path / "one" / "train" / "pos").mkdir(parents=True)
    (tmp_path / "one" / "train" / "pos" / "1.txt").write_text("good")
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(tmp_path / "one"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "one class only ('pos')" in result.stderr
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(tmp_path / "one"), "--cell", "cnn", "--out", "r"])
    assert result.exit_code == 2 and "'cnn' is not one of" in result.stderr


def test_train_export_evaluate_round_trip(runner, text_data, tmp_path):
    run = tmp_path / "run"
    common = ["--data-dir", str(text_data), "--units", "4", "--embedding-dim", "4", "--vocabulary-size", "30",
              "--max-length", "8", "--batch-size", "16", "--clip-norm", "0", "--out", str(run)]
    result = runner.invoke(toolkit, ["train", "sentiment", "--cell", "simple_rnn", "--epochs", "1", *common])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["train"]["clip_norm"] is None  # 0: no clipping
    test_reviews = sum(files_per_class(text_data / "test").values())
    assert json.loads((run / "metrics.json").read_text())["test_examples"] == test_reviews
    assert "test accuracy" in result.stdout.splitlines()[-1]
    resumed = runner.invoke(toolkit, ["train", "sentiment", "--cell", "simple_rnn", "--epochs", "2", *common])
    assert resumed.exit_code == 0 and "Resuming" in resumed.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs_trained"] == 2
    clash = runner.invoke(toolkit, ["train", "sentiment", "--cell", "lstm", "--epochs", "2", *common])
    assert clash.exit_code == 1 and "other settings (cell)" in clash.stderr

    models = tmp_path / "models"
    result = runner.invoke(toolkit, ["export", str(run), "--name", "mine", "--to", str(models)])
    assert result.exit_code == 0 and result.stdout.strip() == str(models / "mine" / "1")
    again = runner.invoke(toolkit, ["export", str(run), "--name", "mine", "--version", "1", "--to", str(models)])
    assert again.exit_code == 1 and "never overwritten" in again.stderr

    result = runner.invoke(toolkit, ["evaluate", "sentiment", "--model", str(models / "mine"), "--data-dir", str(text_data)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["examples"] == test_reviews and sum(map(sum, report["confusion_matrix"])) == test_reviews


def test_the_defaults_train_the_measured_recipe_and_keep_the_most_accurate_epoch(runner, text_data, tmp_path):
    """No architecture options: a bidirectional GRU over words and hashed bigrams, max-pooled, with dropout;
    the epoch exported is the one of the best validation accuracy, not of the lowest validation loss."""
    import keras

    from toolkit.models import text_classifier  # noqa: F401  (registers the custom layers for loading)

    run = tmp_path / "run"
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(text_data), "--units", "4",
                                     "--embedding-dim", "4", "--bigram-buckets", "64", "--epochs", "3",
                                     "--learning-rate", "0.05", "--out", str(run)])
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(run / "best.keras")
    rnn = model.get_layer("rnn_1")
    assert isinstance(rnn, keras.layers.Bidirectional) and isinstance(rnn.forward_layer, keras.layers.GRU)
    assert {"bigram_embedding", "max_pool", "embedding_dropout", "head_dropout"} <= {l.name for l in model.layers}
    history = json.loads((run / "checkpoint" / "state.json").read_text())["history"]
    best = json.loads((run / "metrics.json").read_text())["best_epoch"]
    accuracies = [row["val_accuracy"] for row in history]
    assert best == 1 + accuracies.index(max(accuracies))


def test_naive_bayes_trains_exports_and_answers_on_both_runtimes(runner, text_data, tmp_path):
    """`--layers 0 --naive-bayes` (NBSVM): its ratios come from the training split's counts, and the export
    answers alike from the SavedModel and from its LiteRT form."""
    import keras

    from toolkit.models import text_classifier  # noqa: F401  (registers the custom layers for loading)
    from toolkit.preprocessing.text import TextPreprocessor

    run, models = tmp_path / "run", tmp_path / "models"
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(text_data), "--layers", "0",
                                     "--naive-bayes", "--bigram-buckets", "64", "--vocabulary-size", "30",
                                     "--epochs", "2", "--learning-rate", "0.05", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "Naive Bayes: counted" in result.stderr
    ratios = keras.saving.load_model(run / "best.keras").get_layer("word_evidence").ratios.numpy()
    vocabulary = TextPreprocessor.load(run).vocabulary
    assert all(ratios[vocabulary.index(word)] > 0.5 for word in POSITIVE if word in vocabulary)
    assert all(ratios[vocabulary.index(word)] < -0.5 for word in NEGATIVE if word in vocabulary)
    assert json.loads((run / "metrics.json").read_text())["test"]["accuracy"] >= 0.9

    assert runner.invoke(toolkit, ["export", str(run), "--name", "nb", "--to", str(models)]).exit_code == 0
    (tmp_path / "good.txt").write_text("A brilliant film, I loved it.")
    (tmp_path / "bad.txt").write_text("Dull, boring, awful.")
    answers = {}
    for runtime in ("tensorflow", "litert"):
        result = runner.invoke(toolkit, ["predict", "--model", str(models / "nb"), "--runtime", runtime, "--json",
                                         str(tmp_path / "good.txt"), str(tmp_path / "bad.txt")])
        assert result.exit_code == 0, result.output
        answers[runtime] = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["label"] for a in answers["litert"]] == ["pos", "neg"]
    for tf_answer, lite_answer in zip(answers["tensorflow"], answers["litert"]):
        assert tf_answer["label"] == lite_answer["label"]
        assert tf_answer["probability"] == pytest.approx(lite_answer["probability"], abs=1e-5)


def test_regression_on_numeric_class_folders(runner, tmp_path):
    """Folder names as numbers: trained with squared error, answered with a value, scored with MAE and RMSE."""
    import random

    rng = random.Random(1)
    for split, count in (("train", 30), ("test", 6)):
        write_reviews(tmp_path / "data" / split / "1", NEGATIVE, count, rng)
        write_reviews(tmp_path / "data" / split / "9", POSITIVE, count, rng)
    run = tmp_path / "run"
    result = runner.invoke(toolkit, ["train", "sentiment", "--data-dir", str(tmp_path / "data"), "--regression",
                                     "--units", "4", "--embedding-dim", "4", "--vocabulary-size", "30",
                                     "--max-length", "8", "--batch-size", "8", "--epochs", "2",
                                     "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "test mae" in result.stdout.splitlines()[-1]
    assert runner.invoke(toolkit, ["export", str(run), "--name", "rating", "--to", str(tmp_path / "m")]).exit_code == 0
    model = str(tmp_path / "m" / "rating")

    test_files = sorted((tmp_path / "data" / "test").glob("*/*.txt"))
    result = runner.invoke(toolkit, ["predict", "--json", *map(str, test_files), "--model", model])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["file"] for a in answers] == [str(f) for f in test_files]
    assert all(set(a) == {"file", "value"} and math.isfinite(a["value"]) for a in answers), answers
    errors = [abs(a["value"] - float(f.parent.name)) for a, f in zip(answers, test_files)]

    result = runner.invoke(toolkit, ["evaluate", "sentiment", "--model", model, "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # The report's scores are those of the answers `predict` gives for the same files.
    assert report["examples"] == len(test_files)
    assert report["mae"] == pytest.approx(sum(errors) / len(errors), rel=1e-4)
    assert report["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / len(errors)), rel=1e-4)
