import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit import export
from toolkit.atomic import read_json
from toolkit.errors import ToolkitError
from toolkit.preprocessing.text import TextPreprocessor
from toolkit.serving import read_metadata
from toolkit.tasks.text_classification import export_run

REVIEWS = ["A wonderful, brilliant film.", "Boring and awful.", "", "the plot", "loved it " * 50,
           "Hated it<br />terrible actors", "ünïcode 🎬 review"]

# Runs in a fresh interpreter that imports TensorFlow only: what TF Serving (or any client) sees.
FRESH_PROCESS = """
import json, sys
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
reviews = json.loads(sys.argv[2])
out = {}
for size in (1, 7):
    rows = []
    for start in range(0, len(reviews), size):
        res = serve(text=tf.constant(reviews[start:start + size]))
        rows += [[label.decode(), float(p)] for label, p in zip(res["label"].numpy(), res["probability"].numpy())]
    out[size] = rows
assert not any(name.split(".")[0] in ("toolkit", "cli") for name in sys.modules)
print(json.dumps(out))
"""


def in_memory(run_dir, texts):
    model = keras.saving.load_model(run_dir / "best.keras")
    p = model.predict(TextPreprocessor.load(run_dir)(tf.constant(texts)), verbose=0)[:, 0]
    return [["pos" if q >= 0.5 else "neg", q if q >= 0.5 else 1 - q] for q in p]


def test_export_layout_and_metadata(tiny_model, tiny_run):
    version = tiny_model / "1"
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    meta = read_metadata(version)
    assert meta["kind"] == "text_classifier" and meta["class_names"] == ["neg", "pos"] and meta["version"] == 1
    assert meta["metrics"] == read_json(tiny_run / "metrics.json")  # the run's scores travel with the export
    assert [p.name for p in tiny_model.iterdir()] == ["1"]  # no temporary folder left beside it


def test_the_recorded_test_accuracy_is_the_exports_and_beats_chance(tiny_model, text_data):
    """The accuracy in the metadata is what the exported model scores on the test reviews, well above 1/2."""
    texts, labels = [], []
    for label in ("neg", "pos"):
        for path in sorted((text_data / "test" / label).glob("*.txt")):
            texts.append(path.read_text(encoding="utf-8"))
            labels.append(label)
    serve = tf.saved_model.load(str(tiny_model / "1")).signatures["serving_default"]
    predicted = [label.decode() for label in serve(text=tf.constant(texts))["label"].numpy()]
    accuracy = np.mean([p == t for p, t in zip(predicted, labels)])
    recorded = read_metadata(tiny_model / "1")["metrics"]["test"]["accuracy"]
    assert recorded == pytest.approx(accuracy), f"metadata says {recorded}, the export scores {accuracy}"
    assert accuracy >= 0.8, f"the tiny model's test accuracy is {accuracy}; chance is 0.5"


def test_serving_signature_in_a_fresh_process_matches_the_model(tiny_model, tiny_run):
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(tiny_model / "1"), json.dumps(REVIEWS)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    expected = in_memory(tiny_run, REVIEWS)
    for size in ("1", "7"):
        assert [label for label, _ in out[size]] == [label for label, _ in expected]
        np.testing.assert_allclose([p for _, p in out[size]], [p for _, p in expected], rtol=1e-4, atol=1e-5)
    assert all(0.5 <= p <= 1.0 for _, p in out["7"])


def test_an_existing_version_is_never_overwritten(tiny_model, tiny_run):
    before = sorted(p.name for p in (tiny_model / "1").rglob("*"))
    with pytest.raises(ToolkitError, match="already exists and is never overwritten; export as --version 2"):
        export_run(tiny_run, tiny_model.parent, "sentiment", 1)
    assert sorted(p.name for p in (tiny_model / "1").rglob("*")) == before


@pytest.mark.parametrize("version", [0, -1, "2"])
def test_versions_are_positive_integers(tmp_path, version):
    with pytest.raises(ToolkitError, match="positive integer"):
        export.version_dir(tmp_path, "m", version)


def test_next_version(tmp_path):
    assert export.next_version(tmp_path, "m") == 1
    (tmp_path / "m" / "3").mkdir(parents=True)
    (tmp_path / "m" / "README.md").write_text("card")
    assert export.next_version(tmp_path, "m") == 4


def test_export_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(ToolkitError, match="not a training run folder"):
        export_run(tmp_path, tmp_path / "out", "m", 1)


def probabilities_of_pos(run_dir, texts):
    model = keras.saving.load_model(run_dir / "best.keras")
    return model.predict(TextPreprocessor.load(run_dir)(tf.constant(texts)), verbose=0)[:, 0]


def test_an_ensemble_averages_its_members(tiny_config, tiny_run, tmp_path):
    import dataclasses

    from toolkit.tasks.text_classification import train

    other = tmp_path / "other"
    train(dataclasses.replace(tiny_config, seed=7, cell="lstm", epochs=2), other)  # any member will do: no quality
    path = export_run([tiny_run, other], tmp_path / "models", "ensemble", 1)
    meta = read_metadata(path)
    assert [m["train"]["cell"] for m in meta["ensemble"]] == ["gru", "lstm"]
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = serve(text=tf.constant(REVIEWS))
    p = (probabilities_of_pos(tiny_run, REVIEWS) + probabilities_of_pos(other, REVIEWS)) / 2
    np.testing.assert_allclose(out["probability"].numpy(), np.where(p >= 0.5, p, 1 - p), rtol=1e-4, atol=1e-5)
    assert [label.decode() for label in out["label"].numpy()] == ["pos" if q >= 0.5 else "neg" for q in p]


# === Warm-up requests: what TF Serving replays when it loads a version ===

def tiny_archive():
    """An ExportArchive of two signatures, strings in (`serving_default`) and numbers in (`scores`)."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda text: {"length": tf.strings.length(text, unit="UTF8_CHAR")},
                         input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    archive.add_endpoint("scores", lambda features: {"scores": model(features)},
                         input_signature=[tf.TensorSpec([None, 3], tf.float32, name="features")])
    return archive


WARMUP = [("serving_default", {"text": ["A wonderful film", "ünïcode 🎬"]}),
          ("scores", {"features": np.arange(6, dtype="float64").reshape(2, 3)}),  # float64: written as float32
          ("scores", {"features": [[0.5, 1.0, -1.0]]})]


def read_warmup(version):
    from tensorflow_serving.apis import prediction_log_pb2

    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(str(version / export.WARMUP_PATH))]


def test_warmup_requests_are_written_with_the_version_and_run_through_its_signatures(tmp_path):
    version = export.write_saved_model(tiny_archive(), tmp_path, "tiny", 1, {"kind": "test"}, warmup=WARMUP)
    logs = read_warmup(version)
    assert len(logs) == len(WARMUP)
    signatures = tf.saved_model.load(str(version)).signatures
    for log, (signature_name, inputs) in zip(logs, WARMUP):
        request = log.predict_log.request
        assert request.model_spec.name == "tiny" and request.model_spec.signature_name == signature_name
        specs = signatures[signature_name].structured_input_signature[1]
        assert set(request.inputs) == set(specs) == set(inputs)
        for name, tensor in request.inputs.items():
            assert tf.dtypes.as_dtype(tensor.dtype) == specs[name].dtype
        outputs = signatures[signature_name](**{name: tf.constant(tf.make_ndarray(tensor))
                                                for name, tensor in request.inputs.items()})
        rows = len(next(iter(inputs.values())))
        assert all(output.shape[0] == rows for output in outputs.values())
    assert signatures["serving_default"](text=tf.constant(WARMUP[0][1]["text"]))["length"].numpy().tolist() == [16, 9]
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == ["1"]


def test_warmup_requests_can_be_added_to_an_exported_version(tmp_path):
    version = export.write_saved_model(tiny_archive(), tmp_path, "tiny", 1, {"kind": "test"})
    assert not (version / export.WARMUP_PATH).exists()
    export.write_warmup_requests(version, WARMUP[:1])
    assert read_warmup(version)[0].predict_log.request.model_spec.name == "tiny"  # the model folder's name


@pytest.mark.parametrize("request_, message", [
    (("predict", {"text": ["a"]}), "no signature 'predict'"),
    (("serving_default", {"review": ["a"]}), r"takes the inputs \['text'\]. Received: \['review'\]"),
    (("serving_default", {"text": "a"}), "TF Serving's batching needs a batch dimension"),
    (("scores", {"features": [[1.0, 2.0]]}), r"has the shape \[1, 2\]"),
    (("scores", {"features": [["a", "b", "c"]]}), "input 'features' is not float32"),
])
def test_a_warmup_request_tf_serving_would_fail_on_is_refused_and_nothing_is_published(tmp_path, request_, message):
    with pytest.raises(ValueError, match=message):
        export.write_saved_model(tiny_archive(), tmp_path, "tiny", 1, {"kind": "test"}, warmup=[request_])
    assert list((tmp_path / "tiny").iterdir()) == []


def test_warmup_needs_one_to_a_thousand_requests(tmp_path):
    version = export.write_saved_model(tiny_archive(), tmp_path, "tiny", 1, {"kind": "test"})
    for requests in ([], WARMUP[:1] * 1001):
        with pytest.raises(ValueError, match="1 to 1000 requests"):
            export.write_warmup_requests(version, requests)
