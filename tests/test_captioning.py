"""Captioning end to end on a toy set: train, export, `toolkit caption`, `toolkit evaluate captions`, scores."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import assert_one_error_line_per_bad_file, assert_png, color_words, hostile
from toolkit.atomic import read_json
from toolkit.serving import read_metadata


def held_out_images(caption_data):
    """How many images the toy set holds out for testing (its seeded split)."""
    from toolkit.data.captions import load

    return len(load(caption_data)["test"])


def test_caption_scores_count_ngrams_against_every_reference():
    from toolkit.metrics import caption_scores

    references = [["A dog runs on the grass .", "The brown dog is running"], ["A man rides a bike .", "a cyclist"]]
    perfect = caption_scores(["a dog runs on the grass", "a man rides a bike"], references)
    assert perfect["bleu_4"] == 100.0 and perfect["bleu_1"] == 100.0 and perfect["cider_d"] > 100
    worse = caption_scores(["a cat sleeps on the sofa", "a man rides a bike"], references)
    assert worse["bleu_4"] < perfect["bleu_4"] and worse["cider_d"] < perfect["cider_d"]
    assert worse["bleu_1"] > worse["bleu_2"] > worse["bleu_3"] > worse["bleu_4"]
    # Case and punctuation do not count: captions are compared as the model learns them.
    assert caption_scores(["A DOG runs, on the grass!", "A man rides a bike."], references) == perfect
    # Images may have different numbers of references (COCO has 5 to 7).
    uneven = caption_scores(["a dog runs", "a man rides a bike"], [references[0], references[1][:1]])
    assert 0 < uneven["bleu_4"] <= 100
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        caption_scores(["a", "b"], references[:1])


def test_training_records_its_run(tiny_caption_config, tiny_caption_run, caption_data):
    metrics = read_json(tiny_caption_run / "metrics.json")
    epochs = tiny_caption_config.epochs  # patience == epochs: no early stop
    assert metrics["epochs_trained"] == epochs
    assert metrics["vocabulary_size"] == 4 + 7  # 4 reserved ids + "a square is the blue green red"
    for beam in ("beam_1", "beam_2"):
        assert metrics["test"][beam]["images"] == held_out_images(caption_data)
        assert {"bleu_1", "bleu_4", "cider_d"} <= set(metrics["test"][beam])
    history = (tiny_caption_run / "history.csv").read_text().splitlines()
    assert "gradient_norm" in history[0] and len(history) == 1 + epochs


@pytest.mark.parametrize("beam_size", ["1", "2"])
def test_captions_of_held_out_images_name_their_colour(tiny_captioner, caption_data, beam_size):
    """Both captions the toy set teaches ("A red square.", "The square is red .") are right, and BLEU-4 scores
    the 3-word one 0 (it has no 4-grams); so what is checked is the colour each caption names."""
    from toolkit.data.captions import load

    names = load(caption_data)["test"].names
    files = [str(caption_data / "Images" / name) for name in names]
    result = CliRunner().invoke(toolkit, ["caption", *files, "--model", str(tiny_captioner), "--beam-size", beam_size,
                                          "--json"])
    assert result.exit_code == 0, result.output
    captions = [json.loads(line)["caption"] for line in result.stdout.splitlines()]
    assert [color_words(c) for c in captions] == [[name.split("_")[0]] for name in names], captions


def test_export_layout_and_metadata(tiny_captioner, tiny_caption_run):
    meta = read_metadata(tiny_captioner / "1")
    assert meta["kind"] == "captioner" and meta["image_shape"] == [16, 16, 3]
    assert meta["beam_size"] == 2 and meta["train"]["encoder"] == "cifar_resnet8"
    assert meta["metrics"] == read_json(tiny_caption_run / "metrics.json")  # the run's scores travel with it


def test_caption_names_the_colour_of_every_kind_of_image(tiny_captioner, photos):
    result = CliRunner().invoke(toolkit, ["caption", *map(str, photos.values()), "--model", str(tiny_captioner),
                                          "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(p) for p in photos.values()]
    right = 0
    for name, record in zip(photos, records):
        assert record["caption"] and record["score"] < 0
        right += color_words(record["caption"]) == [name.split("_")[0].split(".")[0]]
    assert right >= len(photos) - 2  # the 16-bit gray one has no true colour


def test_bad_images_get_one_line_each_and_the_others_are_captioned(tiny_captioner, photos, tmp_path):
    cases = hostile(tmp_path)
    args = [str(tmp_path / name) for name in cases] + [str(photos["red.jpg"])]
    result = CliRunner().invoke(toolkit, ["caption", *args, "--model", str(tiny_captioner), "--beam-size", "1"])
    assert_one_error_line_per_bad_file(result, cases)
    alone = CliRunner().invoke(toolkit, ["caption", str(photos["red.jpg"]), "--model", str(tiny_captioner),
                                         "--beam-size", "1"])
    assert alone.exit_code == 0, alone.output
    assert result.stdout == alone.stdout and result.stdout.startswith(str(photos["red.jpg"]) + "\t")


def test_caption_refuses_other_models_and_bad_options(tiny_captioner, tiny_image_model, photos):
    result = CliRunner().invoke(toolkit, ["caption", str(photos["red.jpg"]), "--model", str(tiny_image_model)])
    assert result.exit_code == 1 and "needs a 'captioner' model" in result.stderr
    result = CliRunner().invoke(toolkit, ["caption", str(photos["red.jpg"]), "--model", str(tiny_captioner),
                                          "--beam-size", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output


# Runs in a fresh interpreter that imports TensorFlow only: what TF Serving (or any client) sees.
FRESH_PROCESS = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
images = [open(f, "rb").read() for f in json.loads(sys.argv[2])]
out = {}
for size in (1, 3):
    rows = []
    for start in range(0, len(images), size):
        res = model.signatures["serving_default"](image_bytes=tf.constant(images[start:start + size]))
        assert not any(res["error"].numpy()), res["error"]
        rows += [[c.decode(), float(s)] for c, s in zip(res["caption"].numpy(), res["score"].numpy())]
    out[size] = rows
n = len(images)
greedy = model.signatures["caption"](image_bytes=tf.constant(images), beam_size=tf.fill([n], 1),
                                     length_penalty=tf.fill([n], 1.0))
out["greedy"] = [c.decode() for c in greedy["caption"].numpy()]
# Rows of different requests, as TF Serving's batching merges them: their own settings, a bad row among them.
mixed = model.signatures["caption"](image_bytes=tf.constant([images[0], b"not an image", images[1]]),
                                    beam_size=tf.constant([1, 2, 2]), length_penalty=tf.constant([1.0, 1.0, 1.0]))
out["mixed"] = [[c.decode(), float(s), e.decode()]
                for c, s, e in zip(mixed["caption"].numpy(), mixed["score"].numpy(), mixed["error"].numpy())]
assert not any(name.split(".")[0] in ("toolkit", "cli") for name in sys.modules)
print(json.dumps(out))
"""


def test_serving_signatures_in_a_fresh_process(tiny_captioner, tiny_caption_run, photos):
    """Image bytes in, the in-memory graph's captions out, at any batch size, without the toolkit."""
    import keras

    from toolkit.preprocessing.image import decode_image
    from toolkit.preprocessing.sequences import load_tokenizer
    from toolkit.tasks.captioning import CaptionGraph

    files = [str(photos[n]) for n in ("red.jpg", "blue_animated.gif", "red_rgba.png", "red_cmyk.jpg", "red.bmp")]
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(tiny_captioner / "1"), json.dumps(files)],
                         capture_output=True, text=True, check=True)
    served = json.loads(out.stdout.strip().splitlines()[-1])
    assert [row[0] for row in served["1"]] == [row[0] for row in served["3"]]  # the batch changes no caption
    # and its scores only in the last bits: a matrix product's kernel may block its sums by the batch's size
    np.testing.assert_allclose([row[1] for row in served["1"]], [row[1] for row in served["3"]], rtol=1e-5)

    model = keras.saving.load_model(tiny_caption_run / "best.keras", compile=False)
    graph = CaptionGraph(model, load_tokenizer(tiny_caption_run, "caption"))
    pixels = np.stack([decode_image(open(f, "rb").read(), (16, 16), 3).numpy() for f in files])
    expected = graph.caption_pixels(pixels, 2, 1.0)
    assert [c.decode() for c in expected["caption"].numpy()] == [row[0] for row in served["1"]]
    np.testing.assert_allclose(expected["score"].numpy(), [row[1] for row in served["1"]], atol=1e-4)
    greedy = graph.caption_pixels(pixels, 1, 1.0)
    assert [c.decode() for c in greedy["caption"].numpy()] == served["greedy"]
    assert served["mixed"][0][0] == served["greedy"][0]
    assert served["mixed"][1] == ["", 0.0, "not an image (JPEG, PNG, GIF or BMP expected)"]
    assert served["mixed"][2][0] == served["1"][1][0]


def test_evaluate_captions_scores_the_export_and_draws_examples(tiny_captioner, caption_data, tmp_path):
    png = tmp_path / "examples.png"
    result = CliRunner().invoke(toolkit, ["evaluate", "captions", "--model", str(tiny_captioner), "--data-dir",
                                          str(caption_data), "--examples", str(png)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == held_out_images(caption_data) and report["beam_size"] == 2
    # Export -> reload -> the scores training recorded for the same images and beam.
    recorded = read_metadata(tiny_captioner / "1")["metrics"]["test"]["beam_2"]
    assert report["bleu_4"] == pytest.approx(recorded["bleu_4"], abs=1e-6), (report, recorded)
    assert_png(png)


def test_frozen_encoder_features_are_computed_once(caption_data, tmp_path, monkeypatch, capsys):
    """A pretrained (frozen) encoder runs once per image; its weights travel with the run into the export."""
    from toolkit.models.efficientnet_lite import build_efficientnet_lite0
    from toolkit.tasks.captioning import TrainConfig, export_run, train

    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "lite0.weights.h5"
    build_efficientnet_lite0(input_shape=(32, 32, 3)).save_weights(weights)  # random: the mechanics, not quality
    config = TrainConfig(data_dir=str(caption_data), encoder="efficientnet_lite0", encoder_weights=str(weights),
                         image_size=32, units=8, embedding_dim=8, min_count=1, batch_size=16, epochs=1,
                         beam_size=1, attention="none")
    train(config, tmp_path / "run1")
    assert capsys.readouterr().err.count("Encoding the") == 3
    cached = sorted((tmp_path / "cache" / "features").rglob("*.npy"))
    assert len(cached) == 3 and np.load(cached[0]).shape[1:] == (1, 1, 1280)
    train(config, tmp_path / "run2")
    assert "Encoding the" not in capsys.readouterr().err

    weights.unlink()  # the run holds the encoder's weights: the export needs the file no more
    path = export_run(tmp_path / "run2", tmp_path / "models", "lite", 1)
    image = str(next((caption_data / "Images").glob("red_*.jpg")))
    result = CliRunner().invoke(toolkit, ["caption", image, "--model", str(path)])
    assert result.exit_code == 0 and result.stdout.startswith(image + "\t")  # one epoch: any caption, even none


def test_train_captions_refuses_a_folder_without_captions(tmp_path):
    result = CliRunner().invoke(toolkit, ["train", "captions", "--data-dir", str(tmp_path), "--out",
                                          str(tmp_path / "run")])
    assert result.exit_code == 1 and "no captions in" in result.stderr and "Traceback" not in result.output


def test_attention_comes_from_the_search_that_chose_the_words(tiny_captioner, photos, tmp_path):
    """Per word, weights over the feature map (they sum to 1), with the caption the plain signature gives."""
    from toolkit.tasks.captioning import Captioner

    captioner = Captioner(tiny_captioner)
    files = [photos["red.jpg"], photos["red.bmp"]]
    plain = captioner.caption(files)
    with_attention = captioner.caption(files, attention=True)
    rows, columns = captioner.attention_grid
    for p, a in zip(plain, with_attention):
        assert a["caption"] == p["caption"] and a["score"] == pytest.approx(p["score"], abs=1e-5)
        assert " ".join(a["tokens"]).replace(" .", ".") == a["caption"]
        weights = np.array(a["attention"])
        assert weights.shape == (len(a["tokens"]), rows, columns)
        np.testing.assert_allclose(weights.sum(axis=(1, 2)), 1.0, atol=rows * columns * 1e-4)
    png = tmp_path / "attention.png"
    result = CliRunner().invoke(toolkit, ["caption", str(files[0]), "--model", str(tiny_captioner),
                                          "--attention-map", str(png)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{files[0]}\t{plain[0]['caption']}"
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and min(image.size) > 200
    result = CliRunner().invoke(toolkit, ["caption", str(files[0]), str(files[1]), "--model", str(tiny_captioner),
                                          "--attention-map", str(png)])
    assert result.exit_code == 2 and "one image" in result.output
