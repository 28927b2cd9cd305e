import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import toolkit
from tests.helpers import assert_one_error_line_per_bad_file, files_per_class, hostile, one_error_line
from toolkit.serving import read_metadata

# Runs in a fresh interpreter that imports TensorFlow only: what TF Serving (or any client) sees.
FRESH_PROCESS = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
files = json.loads(sys.argv[2])
images = [open(f, "rb").read() for f in files]
out = {}
for size in (1, 7):
    rows = []
    for start in range(0, len(images), size):
        res = model.signatures["serving_default"](image_bytes=tf.constant(images[start:start + size]))
        rows += [[l.decode(), float(p), [t.decode() for t in top]] for l, p, top in
                 zip(res["label"].numpy(), res["probability"].numpy(), res["top_k_labels"].numpy())]
    out[size] = rows
assert not any(name.split(".")[0] in ("toolkit", "cli") for name in sys.modules)
print(json.dumps(out))
"""


def test_image_export_layout(tiny_image_model):
    meta = read_metadata(tiny_image_model / "1")
    assert meta["kind"] == "image_classifier" and meta["class_names"] == ["blue", "green", "red"]
    assert meta["image_shape"] == [16, 16, 3] and meta["flip_average"] is True


def test_classify_every_kind_of_image(tiny_image_model, photos):
    result = CliRunner().invoke(toolkit, ["classify", *map(str, photos.values()), "--model", str(tiny_image_model),
                                          "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(p) for p in photos.values()]
    for name, record in zip(photos, records):
        assert 0 < record["probability"] <= 1 and len(record["top_k"]) == 1
        # green_16bit.png is gray, not green: 30000 in its one 16-bit channel is gray 117 on 8 bits, as served
        # and, now, as training reads it too. No colour is in it, so no label is right; it must only be answered.
        if name != "green_16bit.png":
            assert record["label"] == name.split("_")[0].split(".")[0], name


def test_bad_images_get_one_line_each_and_the_others_are_answered(tiny_image_model, photos, tmp_path):
    cases = hostile(tmp_path)
    args = [str(tmp_path / name) for name in cases] + [str(photos["red.jpg"])]
    result = CliRunner().invoke(toolkit, ["classify", *args, "--model", str(tiny_image_model)])
    assert_one_error_line_per_bad_file(result, cases)
    alone = CliRunner().invoke(toolkit, ["classify", str(photos["red.jpg"]), "--model", str(tiny_image_model)])
    assert alone.exit_code == 0, alone.output
    assert result.stdout == alone.stdout  # the bad files change nothing in the good one's answer
    assert result.stdout.startswith(str(photos["red.jpg"]) + "\t")


def test_globs_stdin_and_top_k(tiny_image_model, photos):
    folder = photos["red.jpg"].parent
    result = CliRunner().invoke(toolkit, ["classify", str(folder / "red*.png"), "-", "--top-k", "3",
                                          "--model", str(tiny_image_model)], input=f"{photos['red.jpg']}\n\n")
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [line[0] for line in lines] == sorted(str(p) for p in folder.glob("red*.png")) + [str(photos["red.jpg"])]
    top = lines[-1][3].split(", ")
    assert len(top) == 3 and top[0] == f"{lines[-1][1]} {lines[-1][2]}"  # the answer leads its top 3


def test_a_folder_gives_its_images_in_sorted_order(tiny_image_model, photos, tmp_path):
    folder = photos["red.jpg"].parent
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no image here")
    result = CliRunner().invoke(toolkit, ["classify", str(folder), str(tmp_path / "notes"), "--json",
                                          "--model", str(tiny_image_model)])
    error = f"Error: {tmp_path / 'notes'}: is a folder with no .jpg, .jpeg, .png, .gif, .bmp files in it"
    assert result.stderr.splitlines() == [error] and result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(folder / name) for name in sorted(photos)]
    listed = CliRunner().invoke(toolkit, ["classify", "--json", *(str(folder / name) for name in sorted(photos)),
                                          "--model", str(tiny_image_model)])
    assert listed.exit_code == 0 and listed.stdout == result.stdout


def test_serving_signature_in_a_fresh_process(tiny_image_model, tiny_image_run, photos):
    files = [str(photos[n]) for n in ("red.jpg", "red_cmyk.jpg", "blue_animated.gif", "red.bmp", "red_1x1.png",
                                      "red_rgba.png", "green_16bit.png")]
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(tiny_image_model / "1"), json.dumps(files)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["1"] == out["7"] or np.allclose([r[1] for r in out["1"]], [r[1] for r in out["7"]], rtol=1e-5)
    assert [r[0] for r in out["7"]] == [r[0] for r in out["1"]]

    # The same numbers as the Keras model on pixels decoded the same way (flip-averaged).
    from toolkit.tasks.image_classification import ImageClassifier

    classifier = ImageClassifier(tiny_image_model)
    pixels = np.stack([classifier.decode(open(f, "rb").read(), f) for f in files])
    model = keras.saving.load_model(tiny_image_run / "best.keras")
    expected = (model.predict(pixels, verbose=0) + model.predict(pixels[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose([r[1] for r in out["7"]], expected.max(axis=1), rtol=1e-4, atol=1e-5)
    assert [r[0] for r in out["7"]] == [classifier.class_names[i] for i in expected.argmax(axis=1)]


def test_train_images_refuses_unusable_folders(tmp_path):
    (tmp_path / "one" / "cats").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "one" / "cats" / "a.png")
    result = CliRunner().invoke(toolkit, ["train", "images", "--data-dir", str(tmp_path / "one"), "--out",
                                          str(tmp_path / "run")])
    assert result.exit_code == 1 and "one class only ('cats')" in result.stderr
    (tmp_path / "one" / "dogs").mkdir()
    result = CliRunner().invoke(toolkit, ["train", "images", "--data-dir", str(tmp_path / "one"), "--out",
                                          str(tmp_path / "run")])
    assert result.exit_code == 1 and "dogs has no images" in result.stderr
    result = CliRunner().invoke(toolkit, ["train", "images", "--arch", "resnet21", "--dataset", "folder",
                                          "--data-dir", str(tmp_path / "one"), "--out", str(tmp_path / "run")])
    assert "Received: arch='resnet21'" in one_error_line(result)


def test_evaluate_and_export_images(tiny_image_run, image_data, tmp_path):
    runner = CliRunner()
    result = runner.invoke(toolkit, ["export", str(tiny_image_run), "--name", "c", "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(toolkit, ["evaluate", "images", "--model", str(tmp_path / "c"), "--dataset", "folder",
                                     "--data-dir", str(image_data)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    test_images = sum(files_per_class(image_data / "test").values())
    assert report["examples"] == test_images and sum(map(sum, report["confusion_matrix"])) == test_images
    # Export -> reload -> the accuracy training recorded (the export averages each image with its mirror image).
    recorded = read_metadata(tmp_path / "c" / "1")["metrics"]["test"]["accuracy_flip_averaged"]
    assert report["accuracy"] == pytest.approx(recorded), (report["accuracy"], recorded)
    result = runner.invoke(toolkit, ["predict", str(image_data / "train" / "red" / "0.png"), "--model",
                                     str(tmp_path / "c")])
    assert "binary file" in one_error_line(result)  # refused before the model is even loaded


def test_the_dataset_is_guessed_from_the_data_folder(tmp_path, image_data):
    from toolkit.data.images import guess_dataset

    (tmp_path / "fm").mkdir()
    (tmp_path / "fm" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "c10").mkdir()
    (tmp_path / "c10" / "cifar10-jpeg.tar.gz").write_bytes(b"")
    assert guess_dataset(tmp_path / "fm") == "fashion_mnist"
    assert guess_dataset(tmp_path / "c10") == "cifar10"
    assert guess_dataset(image_data) == "folder"
    assert guess_dataset(None) == "cifar10"
