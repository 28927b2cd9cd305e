"""scripts/recover_run.py: a run folder rebuilt from an export exports again to a model that answers the same."""

import importlib.util
import sys

import keras
import numpy as np
import pytest

from tests.helpers import REPO
from toolkit.errors import ToolkitError

SENTENCES = ["a big dog sees a cat.", "the man runs.", "a small red ball sleeps now.", "dog", "a cat sleeps."]


@pytest.fixture(scope="module")
def recover_run():
    """The script as a module: its functions, without running `main`."""
    spec = importlib.util.spec_from_file_location("recover_run", REPO / "scripts" / "recover_run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def recover_and_export(recover_run, model_dir, tmp_path, name):
    from toolkit.tasks import export_runs

    run_dir = recover_run.recover(model_dir, tmp_path / "run")
    return run_dir, export_runs([run_dir], tmp_path / "models", name, 1)


def test_image_classifier_answers_the_same(recover_run, tiny_image_run, tiny_image_model, image_data, tmp_path):
    from toolkit.tasks.image_classification import ImageClassifier
    from toolkit.training import read_run

    run_dir, exported = recover_and_export(recover_run, tiny_image_model / "1", tmp_path, "colors")
    original = read_run(tiny_image_run, "image_classifier")
    recovered = read_run(run_dir, "image_classifier")
    for fact in ("class_names", "image_shape", "train", "metrics"):
        assert recovered[fact] == original[fact], fact
    # float32 constants of the graph: the training run's float64 moments, rounded to float32
    np.testing.assert_array_equal(np.float32(recovered["pixel_mean"]), np.float32(original["pixel_mean"]))
    np.testing.assert_array_equal(np.float32(recovered["pixel_variance"]), np.float32(original["pixel_variance"]))

    before, after = ImageClassifier(tiny_image_model / "1"), ImageClassifier(exported)
    pixels = np.random.default_rng(0).uniform(0, 255, (7, 16, 16, 3)).astype("float32")
    files = sorted(str(p) for p in (image_data / "test").rglob("*.png"))
    for old, new in ((before.predict_pixels(pixels), after.predict_pixels(pixels)),
                     (before.predict(files), after.predict(files))):
        assert [r["label"] for r in new] == [r["label"] for r in old]
        assert [r["probability"] for r in new] == pytest.approx([r["probability"] for r in old], abs=1e-6)


def test_translator_answers_the_same(recover_run, tiny_translation_run, tiny_translator, tmp_path):
    from toolkit.tasks.translation import Translator

    run_dir, exported = recover_and_export(recover_run, tiny_translator / "1", tmp_path, "toy_en_de")
    for side in ("source", "target"):  # the graph's tokenizing op reads the source model, detokenizing the target
        assert (run_dir / f"{side}.model").read_bytes() == (tiny_translation_run / f"{side}.model").read_bytes()
    # Keras numbered the Bidirectional's GRU anew when it rebuilt the model in this process (`forward_gru_1`,
    # not the trained `forward_gru`): those weights were matched by the name's stem
    original, rebuilt = ({w.path for w in keras.saving.load_model(run / "best.keras", compile=False).weights}
                         for run in (tiny_translation_run, run_dir))
    assert original != rebuilt and len(original) == len(rebuilt)
    before, after = Translator(tiny_translator / "1"), Translator(exported)
    for beam_size in (1, 3):
        old = before.translate(SENTENCES, beam_size=beam_size)
        new = after.translate(SENTENCES, beam_size=beam_size)
        assert [t["translation"] for t in new] == [t["translation"] for t in old]
        assert [t["score"] for t in new] == pytest.approx([t["score"] for t in old], abs=1e-6)


@pytest.fixture(scope="module")
def lstm_run(tiny_config, tmp_path_factory):
    """A second tiny text classifier, unlike `tiny_run`: an LSTM of another seed."""
    import dataclasses

    from toolkit.tasks.text_classification import train

    run_dir = tmp_path_factory.mktemp("lstm_run") / "lstm"
    train(dataclasses.replace(tiny_config, cell="lstm", seed=7, epochs=3), run_dir)
    return run_dir


def test_text_classifier_ensemble_answers_the_same(recover_run, tiny_run, lstm_run, tmp_path):
    """An ensemble's members share their variables' names: each is told apart by the ops that read its variables,
    and gets its own settings (a GRU's weights would not fit the LSTM member), words and run folder."""
    from toolkit.tasks import export_runs
    from toolkit.tasks.text_classification import TextClassifier

    ensemble = export_runs([tiny_run, lstm_run], tmp_path / "before", "sentiment", 1)
    members = recover_run.recover(ensemble, tmp_path / "runs")
    assert [m.name for m in members] == ["tiny", "lstm"]
    for member, original in zip(members, (tiny_run, lstm_run)):
        assert (member / "vocabulary.txt").read_text() == (original / "vocabulary.txt").read_text()
    exported = export_runs(members, tmp_path / "after", "sentiment", 1)
    texts = ["A wonderful film, superb actors.", "boring and dull", "the plot was terrible but the actors great", ""]
    old, new = TextClassifier(ensemble).predict(texts), TextClassifier(exported).predict(texts)
    assert [r["label"] for r in new] == [r["label"] for r in old]
    assert [r["probability"] for r in new] == pytest.approx([r["probability"] for r in old], abs=1e-6)


def test_naive_bayes_with_a_spectrally_hashed_reader_answers_the_same(recover_run, tiny_config, tmp_path):
    """NBSVM's fixed ratios, its weights and bias, and a bigram reader's spectral hash all come back."""
    import dataclasses

    from toolkit.tasks import export_runs
    from toolkit.tasks.text_classification import TextClassifier, train

    runs = [tmp_path / "nbsvm", tmp_path / "reader"]
    train(dataclasses.replace(tiny_config, num_layers=0, naive_bayes=True, pooling="mean", bigram_buckets=64,
                              epochs=2), runs[0])
    train(dataclasses.replace(tiny_config, bigram_buckets=64, epochs=1), runs[1])
    ensemble = export_runs(runs, tmp_path / "before", "sentiment", 1)
    members = recover_run.recover(ensemble, tmp_path / "recovered")
    exported = export_runs(members, tmp_path / "after", "sentiment", 1)
    texts = ["A wonderful film, superb actors.", "boring and dull", "the plot was terrible but the actors great", ""]
    old, new = TextClassifier(ensemble).predict(texts), TextClassifier(exported).predict(texts)
    assert [r["label"] for r in new] == [r["label"] for r in old]
    assert [r["probability"] for r in new] == pytest.approx([r["probability"] for r in old], abs=1e-6)
    ratios = keras.saving.load_model(members[0] / "best.keras").get_layer("word_evidence").ratios.numpy()
    assert np.abs(ratios).max() > 0.5  # the counted ratios, not zeros


def test_auto_named_layers_are_mapped_by_their_stem(recover_run):
    """Keras numbers the layers it names (`gru`, `gru_1`, ...) per process: a `Bidirectional`'s `forward_gru_3` in
    the export is the rebuilt model's `forward_gru` or `forward_gru_7`, never another stem."""
    saved = ["embedding/embeddings", "forward_gru_3/gru_cell/kernel", "backward_gru_3/gru_cell/kernel",
             "forward_gru_4/gru_cell/kernel", "backward_gru_4/gru_cell/kernel", "forward_lstm/lstm_cell/kernel"]
    model = ["embedding/embeddings", "forward_gru/gru_cell/kernel", "backward_gru/gru_cell/kernel",
             "forward_gru_1/gru_cell/kernel", "backward_gru_1/gru_cell/kernel", "forward_lstm_2/lstm_cell/kernel"]
    assert recover_run.auto_name_mapping(model, saved) == {
        "forward_gru/gru_cell/kernel": "forward_gru_3/gru_cell/kernel",
        "backward_gru/gru_cell/kernel": "backward_gru_3/gru_cell/kernel",
        "forward_gru_1/gru_cell/kernel": "forward_gru_4/gru_cell/kernel",
        "backward_gru_1/gru_cell/kernel": "backward_gru_4/gru_cell/kernel",
        "forward_lstm_2/lstm_cell/kernel": "forward_lstm/lstm_cell/kernel"}
    assert recover_run.auto_name_mapping(["forward_lstm/lstm_cell/kernel"], ["forward_gru/lstm_cell/kernel"]) == {}


def test_a_model_that_does_not_fit_fails_listing_every_mismatch(recover_run, tiny_translator, tmp_path):
    from toolkit.models.translator import build_translator

    exported = recover_run.read_export(tiny_translator / "1")
    wrong = build_translator(40, 40, units=16, embedding_dim=8, decoder_layers=1)
    with pytest.raises(ToolkitError) as error:
        recover_run.match_weights(wrong.weights, exported.variables)
    message = str(error.value)
    assert "source_embedding/embeddings: shape (40, 8) here" in message and "decoder_2/gru_cell/kernel" in message
    assert "in the export, not in the rebuilt model" in message

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(ToolkitError, match="not empty"):
        recover_run.recover(tiny_translator / "1", tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]
