"""The language model: its loss, its data (train and unlabelled reviews, never test), training, export,
sampling, and the classifiers started from it (`--init-from`)."""

import io
import json
import random
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import FILLER, NEGATIVE, POSITIVE, one_error_line, write_reviews
from toolkit.errors import ToolkitError

UNSEEN = "zebracorn"  # a word only the test reviews have: a vocabulary that holds it read the test split


@pytest.fixture(scope="module")
def imdb_copy(tmp_path_factory):
    """A local IMDB copy as users keep one: `aclImdb/{train,test}/{neg,pos}` and `aclImdb_unsup.tar.gz` beside it
    (the unlabelled reviews, whose words `UNLABELLED` only they have)."""
    root = tmp_path_factory.mktemp("imdb")
    rng = random.Random(0)
    acl = root / "aclImdb"
    for split, count in (("train", 12), ("test", 6)):
        write_reviews(acl / split / "neg", NEGATIVE, count, rng)
        write_reviews(acl / split / "pos", POSITIVE, count, rng)
    for review in (acl / "test" / "pos").iterdir():
        review.write_text(review.read_text() + f" {UNSEEN}")
    with tarfile.open(root / "aclImdb_unsup.tar.gz", "w:gz") as tar:
        for i in range(40):
            words = rng.sample(FILLER, 4) + ["unlabelled", "ones"]
            data = (" ".join(words) + ".").encode()
            info = tarfile.TarInfo(f"aclImdb/train/unsup/{i}_0.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return root


@pytest.fixture(scope="module")
def lm_run(imdb_copy, tmp_path_factory):
    from toolkit.tasks.language_model import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("lm") / "run"
    config = TrainConfig(data_dir=str(imdb_copy), units=8, embedding_dim=8, samples=4, vocabulary_size=40,
                         sequence_length=4, batch_size=16, epochs=2, learning_rate=0.02, validation_fraction=0.2)
    results = train(config, run_dir)
    return run_dir, results


@pytest.fixture(scope="module")
def lm_model(lm_run, tmp_path_factory):
    from toolkit.tasks.language_model import export_run

    return export_run(lm_run[0], tmp_path_factory.mktemp("models"), "review_lm", 1)


# === The loss ===

def test_next_token_loss_is_the_full_softmax_nll_outside_training_and_padding_costs_nothing():
    from toolkit.layers.softmax import NextTokenLoss

    layer = NextTokenLoss(7, samples=3)
    hidden = np.random.default_rng(0).normal(size=(2, 3, 5)).astype("float32")
    targets = np.array([[1, 6, 0], [2, 0, 0]], "int32")
    nll = np.asarray(layer(hidden, targets))
    logits = hidden @ np.asarray(layer.kernel).T + np.asarray(layer.bias)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0] * (targets > 0)
    np.testing.assert_allclose(nll, expected, rtol=1e-5, atol=1e-6)
    sampled = np.asarray(layer(hidden, targets, training=True))
    assert np.all(np.isfinite(sampled)) and np.all(sampled[targets > 0] > 0) and np.all(sampled[targets == 0] == 0)


def test_sampled_softmax_training_lowers_the_exact_loss():
    """Trained with 8 sampled words of 200, the model still learns the full distribution: a word that always
    follows another becomes likely under the full softmax."""
    import keras

    from toolkit.layers.softmax import Perplexity, TokenMean
    from toolkit.models.language_model import build_language_model

    keras.utils.set_random_seed(0)
    model = build_language_model(200, units=16, embedding_dim=8, samples=8)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=TokenMean(), metrics=[Perplexity()])
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 200, size=(64, 1))
    sequences = np.concatenate([ids, (ids + 1) % 198 + 2, ids, (ids + 1) % 198 + 2], axis=1).astype("int32")
    inputs = {"token_ids": sequences[:, :-1], "next_ids": sequences[:, 1:]}
    before = model.evaluate(inputs, sequences[:, 1:], verbose=0, return_dict=True)
    model.fit(inputs, sequences[:, 1:], epochs=30, batch_size=16, verbose=0)
    after = model.evaluate(inputs, sequences[:, 1:], verbose=0, return_dict=True)
    assert before["perplexity"] > 150 and after["perplexity"] < before["perplexity"] / 4


# === Data: train and unlabelled reviews, never test ===

def test_unlabelled_reviews_are_read_from_the_tarball_beside_the_copy(imdb_copy, tmp_path, monkeypatch):
    from toolkit.data import imdb

    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "cache"))
    paths = imdb.unlabelled_reviews(imdb_copy)
    assert len(paths) == 40 and all(p.parent.name == "unsup" for p in paths)
    bare = tmp_path / "bare"
    (bare / "train" / "pos").mkdir(parents=True)
    with pytest.raises(ToolkitError, match="no unlabelled IMDB reviews"):
        imdb.unlabelled_reviews(bare)


def test_the_language_model_learns_from_train_and_unlabelled_reviews_never_test(lm_run):
    from toolkit.preprocessing.text import TextPreprocessor

    run_dir, results = lm_run
    vocabulary = TextPreprocessor.load(run_dir).vocabulary
    assert "unlabelled" in vocabulary and "great" in vocabulary and UNSEEN not in vocabulary
    config = json.loads((run_dir / "config.json").read_text())
    assert config["texts"]["train"] + config["texts"]["validation"] == 24 + 40
    assert results["validation"]["perplexity"] == pytest.approx(np.exp(results["validation"]["loss"]), rel=0.05)
    assert 1 < results["validation"]["perplexity"] < len(vocabulary)


def test_validation_texts_are_fixed_by_name_and_size(tmp_path):
    from toolkit.tasks.language_model import split

    for i in range(50):
        (tmp_path / f"{i}.txt").write_text("x" * i)
    paths = sorted(tmp_path.iterdir())
    train, validation = split(paths, 0.2)
    assert not set(train) & set(validation) and len(train) + len(validation) == 50
    assert split(paths[::-1], 0.2)[1] == validation[::-1]  # not by position
    (tmp_path / "new.txt").write_text("new")
    more_train, more_validation = split(paths + [tmp_path / "new.txt"], 0.2)
    assert set(train) <= set(more_train) and set(validation) <= set(more_validation)  # added files move none


def test_windows_cut_a_review_into_input_and_next_word_steps():
    import tensorflow as tf

    from toolkit.tasks.language_model import windows

    pairs = list(windows(tf.constant([5, 6, 7, 8, 9, 10]), 2).as_numpy_iterator())
    assert [(x.tolist(), y.tolist()) for x, y in pairs] == [([5, 6], [6, 7]), ([7, 8], [8, 9]), ([9, 0], [10, 0])]


def test_texts_folder_of_your_own_is_refused_when_empty(tmp_path):
    result = CliRunner().invoke(toolkit, ["train", "language-model", "--texts", str(tmp_path), "--out",
                                          str(tmp_path / "run")])
    assert result.exit_code == 1 and "holds no .txt files" in one_error_line(result)
    assert not (tmp_path / "run").exists()


def test_texts_files_too_large_to_read_are_left_out(tmp_path, monkeypatch, capsys):
    from toolkit.tasks import language_model

    monkeypatch.setattr(language_model, "MAX_TEXT_BYTES", 100)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "small.txt").write_text("a short review")
    (tmp_path / "huge.txt").write_text("word " * 100)
    config = language_model.TrainConfig(texts=str(tmp_path))
    assert language_model.text_files(config) == [tmp_path / "a" / "small.txt"]
    assert "1 file(s) over" in capsys.readouterr().err


# === Export, sampling, scoring ===

def test_the_export_serves_the_next_word_and_scores_texts_as_the_run_does(lm_run, lm_model):
    import tensorflow as tf

    from toolkit.tasks.language_model import load

    run, exported = load(lm_run[0]), load(lm_model)
    texts = ["the movie was great", "a plot"]
    log_p = exported.next_word(texts)
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(log_p, run.next_word(texts), atol=1e-5)
    # score = the sum of each word's log p given those before it
    scored = exported.perplexity(["the movie was great"])[0]
    vocabulary = exported.vocabulary
    words, total = "the movie was great".split(), 0.0
    for i in range(1, len(words)):
        total += exported.next_word([" ".join(words[:i])])[0][vocabulary.index(words[i])]
    assert scored["tokens"] == 3 and scored["log_likelihood"] == pytest.approx(total, abs=1e-3)
    loaded = tf.saved_model.load(str(lm_model))  # plain TensorFlow, no toolkit
    outputs = loaded.signatures["score"](text=tf.constant(["the movie", "the movie was great", ""]))
    assert outputs["tokens"].numpy().tolist() == [1, 3, 0]


def test_the_next_word_follows_the_weights_and_the_export_holds_them_once(lm_run, lm_model):
    from toolkit.models.language_model import next_word_function
    from toolkit.training import load_best

    model = load_best(lm_run[0])
    next_word = next_word_function(model)
    ids = np.array([[3, 4, 5, 0], [6, 0, 0, 0]], "int32")
    before = np.asarray(next_word(ids))
    assert np.asarray(next_word(ids[:1, :3])).tolist() == before[:1].tolist()  # padding changes nothing
    softmax = model.get_layer("softmax")
    softmax.set_weights([np.zeros_like(w) for w in softmax.get_weights()])
    np.testing.assert_allclose(np.asarray(next_word(ids)), np.log(1 / before.shape[1]), rtol=1e-5)
    # the graph reads the weights from variables, never from a frozen copy of them
    assert (lm_model / "saved_model.pb").stat().st_size < 200_000


def test_generate_continues_a_prompt_the_same_way_from_run_and_export(lm_run, lm_model):
    runner = CliRunner()
    common = ["the movie", "--words", "5", "--seed", "3", "--samples", "2", "--json"]
    from_run = runner.invoke(toolkit, ["generate", *common, "--model", str(lm_run[0])])
    from_export = runner.invoke(toolkit, ["generate", *common, "--model", str(lm_model)])
    assert from_run.exit_code == 0 and from_export.exit_code == 0, from_run.output + from_export.output
    answers = [json.loads(line) for line in from_export.stdout.splitlines()]
    assert from_run.stdout == from_export.stdout and len(answers) == 2
    for answer in answers:
        words = answer["continuation"].split()
        assert answer["prompt"] == "the movie" and len(words) == 5 and "[UNK]" not in words
    unknown = runner.invoke(toolkit, ["generate", "qwertyuiop", "--model", str(lm_model)])
    assert unknown.exit_code == 1 and "no word the model knows" in one_error_line(unknown)
    wrong = runner.invoke(toolkit, ["generate", "the", "--model", str(lm_model), "--temperature", "0"])
    assert wrong.exit_code == 2


def test_evaluate_scores_the_perplexity_of_test_reviews(lm_run, lm_model, imdb_copy):
    runner = CliRunner()
    reports = []
    for model in (lm_run[0], lm_model):
        result = runner.invoke(toolkit, ["evaluate", "language-model", "--model", str(model), "--data-dir",
                                         str(imdb_copy), "--sample", "5", "--seed", "2"])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[0]["texts"] == 5 and reports[0]["tokens"] == reports[1]["tokens"] > 5
    assert reports[0]["perplexity"] == pytest.approx(reports[1]["perplexity"], rel=1e-4)
    assert 1 < reports[0]["perplexity"] < 40


# === Classifiers started from the language model ===

def test_a_classifier_starts_from_the_language_model_and_shares_its_vocabulary(lm_run, lm_model, imdb_copy,
                                                                                tmp_path):
    import keras

    from toolkit import pretraining
    from toolkit.preprocessing.text import TextPreprocessor
    from toolkit.tasks.text_classification import TrainConfig, train

    for source in (lm_run[0], lm_model):
        start = pretraining.read_start(source)
        assert start.settings == {"cell": "lstm", "units": 8, "embedding_dim": 8, "num_layers": 1}
        assert start.vocabulary == TextPreprocessor.load(lm_run[0]).vocabulary
    config = TrainConfig(data_dir=str(imdb_copy / "aclImdb"), init_from=str(lm_model), epochs=1, batch_size=8,
                         pooling="mean_max", learning_rate=1e-9, validation_split=0.25)
    train(config, tmp_path / "run")
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert (stored["units"], stored["embedding_dim"], stored["vocabulary_size"]) == (8, 8, len(start.vocabulary))
    assert (stored["cell"], stored["bidirectional"], stored["bigram_buckets"]) == ("lstm", False, 0)  # as the LM
    assert TextPreprocessor.load(tmp_path / "run").vocabulary == start.vocabulary
    classifier = keras.saving.load_model(tmp_path / "run" / "best.keras")
    for name in ("embedding", "rnn_1"):  # a learning rate of 1e-9 leaves the start as it was
        for ours, theirs in zip(classifier.get_layer(name).get_weights(), start.weights[name]):
            np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_frozen_epochs_keep_the_started_layers_while_the_head_learns(lm_model, imdb_copy, tmp_path):
    import keras

    from toolkit import pretraining
    from toolkit.tasks.text_classification import TrainConfig, train

    start = pretraining.read_start(lm_model)
    config = TrainConfig(data_dir=str(imdb_copy / "aclImdb"), init_from=str(lm_model), epochs=2, batch_size=8,
                         freeze_epochs=1, pretrained_rate=0.5, learning_rate=0.05, validation_split=0.25)
    train(config, tmp_path / "run")
    history = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())["history"]
    assert len(history) == 2
    # epoch 1 (frozen), as checkpointed then: the best epoch's model is either; look at the weights after each
    first = keras.saving.load_model(tmp_path / "run" / "best.keras")
    moved = [not np.allclose(ours, theirs) for ours, theirs in
             zip(first.get_layer("embedding").get_weights(), start.weights["embedding"])]
    best = json.loads((tmp_path / "run" / "metrics.json").read_text())["best_epoch"]
    assert moved == [best == 2]  # frozen through epoch 1, learning in epoch 2
    head = first.get_layer("probability").get_weights()[0]
    assert np.abs(head).sum() > 0


def test_freezing_needs_a_language_model():
    from toolkit.tasks.text_classification import TrainConfig

    with pytest.raises(ValueError, match="give init_from too"):
        TrainConfig(freeze_epochs=1).validate()


@pytest.mark.parametrize("option, message", [
    (["--units", "32"], "units=32 differs from the language model's 8"),
    (["--embedding-dim", "16"], "embedding_dim=16 differs from the language model's 8"),
])
def test_settings_that_contradict_the_language_model_are_refused(lm_run, imdb_copy, tmp_path, option, message):
    result = CliRunner().invoke(toolkit, ["train", "sentiment", "--data-dir", str(imdb_copy), "--init-from",
                                          str(lm_run[0]), "--out", str(tmp_path / "run"), *option])
    assert result.exit_code == 1 and message in one_error_line(result)
    assert not (tmp_path / "run").exists()


def test_init_from_a_model_that_is_no_language_model_is_one_line(tiny_run, tiny_model, text_data, tmp_path):
    for source, message in ((tiny_run, "not a language_model"), (tiny_model, "not a language model"),
                            (tmp_path / "missing", "no such model")):
        result = CliRunner().invoke(toolkit, ["train", "sentiment", "--data-dir", str(text_data), "--init-from",
                                              str(source), "--out", str(tmp_path / "run")])
        assert result.exit_code == 1 and message in one_error_line(result), result.output


# === Short reviews ===

def test_first_sentence_cuts_at_the_first_sentence_end():
    from toolkit.preprocessing.tokens import first_sentence

    assert first_sentence("Loved it. Then again, no.") == "Loved it."
    assert first_sentence("Rated 3.5 of 10!! Awful.") == "Rated 3.5 of 10!!"
    assert first_sentence('He said "dull." Yes.') == 'He said "dull."'
    assert first_sentence("Great film.<br /><br />Really.") == "Great film."
    assert first_sentence("no end here") == "no end here" and first_sentence("") == ""


def test_random_crops_are_runs_of_the_review_of_every_length():
    import tensorflow as tf

    from toolkit.tasks.text_classification import random_crop

    tf.random.set_seed(0)
    review = tf.range(100, 300)
    lengths = []
    for _ in range(300):
        crop = random_crop(review, 1.0).numpy()
        assert crop[0] >= 100 and np.all(np.diff(crop) == 1)  # one contiguous run of the review
        lengths.append(len(crop))
    assert min(lengths) <= 8 and max(lengths) >= 150 and 5 <= min(lengths)
    assert np.median(lengths) < 60  # log-uniform: short crops as common as long ones
    assert random_crop(review, 0.0).numpy().tolist() == list(range(100, 300))
    assert random_crop(tf.constant([7, 8]), 1.0).numpy().tolist() == [7, 8]  # shorter than the shortest crop


def test_evaluate_scores_first_sentences(tiny_model, text_data):
    runner = CliRunner()
    full = runner.invoke(toolkit, ["evaluate", "sentiment", "--model", str(tiny_model), "--data-dir", str(text_data)])
    first = runner.invoke(toolkit, ["evaluate", "sentiment", "--model", str(tiny_model), "--data-dir", str(text_data),
                                    "--first-sentence"])
    assert full.exit_code == 0 and first.exit_code == 0, first.output
    full, first = json.loads(full.stdout), json.loads(first.stdout)
    assert first["first_sentence"] is True and "first_sentence" not in full
    # the toy reviews are one sentence each: the same texts, the same score
    assert first["accuracy"] == full["accuracy"] and first["mean_words"] == 5.0
