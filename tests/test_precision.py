"""`--precision`: 16-bit compute with float32 weights while training; float32 in and out once exported."""

import keras
import numpy as np
import pytest

from toolkit.tasks import export_runs, load
from toolkit.tasks import text_classification as tc


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_resumes_and_exports_float32(text_data, tmp_path, precision):
    run_dir = tmp_path / "run"
    config = dict(data_dir=str(text_data), units=8, embedding_dim=8, vocabulary_size=100, batch_size=16,
                  precision=precision)
    tc.train(tc.TrainConfig(epochs=1, **config), run_dir)
    assert keras.config.dtype_policy().name == "float32", "the run leaves the global policy as it found it"
    results = tc.train(tc.TrainConfig(epochs=2, **config), run_dir)  # resumes after epoch 1
    assert results["epochs_trained"] == 2

    trained = keras.saving.load_model(run_dir / "best.keras")
    compute = {layer.name: layer.dtype_policy.compute_dtype for layer in trained.layers if layer.weights}
    assert compute["rnn_1"] == precision.removeprefix("mixed_")
    assert compute["probability"] == "float32"  # the head: probabilities near 0 and 1 keep their resolution
    if precision == "mixed_float16":  # loss scaling, kept across the resume with its state
        assert isinstance(trained.optimizer, keras.optimizers.LossScaleOptimizer)
        assert int(trained.optimizer.iterations) > 0

    export_runs([run_dir], tmp_path / "models", "sentiment", 1)
    classifier = load(tmp_path / "models" / "sentiment", runtime="tensorflow")
    outputs = classifier.signatures["serving_default"].structured_outputs
    assert outputs["probability"].dtype.name == "float32"
    reviews = ["A wonderful film, brilliant actors.", "Boring and dull, I hated it."]
    exported = [a["probability"] if a["label"] == "pos" else 1 - a["probability"] for a in classifier.predict(reviews)]
    from toolkit.preprocessing.text import TextPreprocessor

    ids = TextPreprocessor.load(run_dir)(np.array(reviews))
    mixed = keras.ops.convert_to_numpy(trained(ids))[:, 0]
    np.testing.assert_allclose(exported, mixed, atol=0.02)  # the same model, computed at full precision


def test_a_resumed_run_keeps_its_precision(text_data, tmp_path):
    run_dir = tmp_path / "run"
    config = dict(data_dir=str(text_data), units=8, embedding_dim=8, vocabulary_size=100, epochs=1)
    tc.train(tc.TrainConfig(**config), run_dir)
    with pytest.raises(Exception, match="other settings \\(precision\\)"):
        tc.train(tc.TrainConfig(precision="mixed_bfloat16", **config), run_dir)
