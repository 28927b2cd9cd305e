"""Fixtures only: tiny data made on the spot, one tiny model of each family trained and exported per session.

Helpers and shared assertions live in `tests/helpers.py`.
"""

import os
import random

import pytest

from tests.helpers import (
    COLORS,
    LEXICON,
    NEGATIVE,
    POSITIVE,
    save,
    toy_translation,
    write_colour_folders,
    write_reviews,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any test imports TensorFlow


@pytest.fixture(scope="session")
def text_data(tmp_path_factory):
    """`ROOT/{train,test}/{neg,pos}/*.txt`: 40 + 10 reviews per class, sentiment words at random places."""
    root = tmp_path_factory.mktemp("reviews")
    rng = random.Random(0)
    for split, count in (("train", 40), ("test", 10)):
        write_reviews(root / split / "neg", NEGATIVE, count, rng)
        write_reviews(root / split / "pos", POSITIVE, count, rng)
    return root


@pytest.fixture(scope="session")
def tiny_config(text_data):
    from toolkit.tasks.text_classification import TrainConfig

    # The classic many-to-one GRU (the last state reads the review), not the defaults' bidirectional reader.
    return TrainConfig(data_dir=str(text_data), cell="gru", units=8, embedding_dim=8, vocabulary_size=50,
                       max_length=8, batch_size=8, epochs=8, patience=3, learning_rate=0.02, clip_norm=1.0,
                       validation_split=0.2, bidirectional=False, pooling="last", dropout=0.0, bigram_buckets=0,
                       monitor="val_loss")


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tmp_path_factory):
    """A run folder of a tiny GRU trained on `text_data`."""
    from toolkit.tasks.text_classification import train

    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    train(tiny_config, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_model(tiny_run, tmp_path_factory):
    """`tiny_run` exported as MODELS/sentiment/1; returns MODELS/sentiment."""
    from toolkit.tasks.text_classification import export_run

    models = tmp_path_factory.mktemp("saved_models")
    export_run(tiny_run, models, "sentiment", 1)
    return models / "sentiment"


@pytest.fixture(scope="session")
def image_data(tmp_path_factory):
    """`ROOT/{train,test}/{blue,green,red}/*.png`: 16x16 noisy squares of one colour each."""
    return write_colour_folders(tmp_path_factory.mktemp("images"), {"train": 16, "test": 4}, size=16, seed=0)


@pytest.fixture(scope="session")
def tiny_image_run(image_data, tmp_path_factory):
    from toolkit.tasks.image_classification import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("image_run") / "tiny"
    train(TrainConfig(dataset="folder", data_dir=str(image_data), arch="resnet20", width=4, epochs=6, translate=0,
                      batch_size=8, learning_rate=0.02, warmup_epochs=0, validation_split=0.25), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_image_model(tiny_image_run, tmp_path_factory):
    """`tiny_image_run` exported as MODELS/colors/1; returns MODELS/colors."""
    from toolkit.tasks.image_classification import export_run

    models = tmp_path_factory.mktemp("image_models")
    export_run(tiny_image_run, models, "colors", 1)
    return models / "colors"


@pytest.fixture(scope="session")
def tiny_forecaster(tmp_path_factory):
    """A tiny LSTM forecaster (Gaussian) of a daily series with a weekly cycle, exported as MODELS/sales/1;
    returns (the run folder, MODELS/sales, the series' CSV)."""
    import numpy as np

    from toolkit.tasks.forecasting import TrainConfig, export_run, train

    root = tmp_path_factory.mktemp("tiny_forecaster")
    t = np.arange(200)
    values = 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(0).normal(0, 0.1, len(t))
    days = np.datetime64("2020-01-01") + t
    (root / "s.csv").write_text("day,sales\n" + "".join(f"{d},{v:.4f}\n" for d, v in zip(days, values)))
    train(TrainConfig(csv=str(root / "s.csv"), window=14, horizon=7, units=8, epochs=2, batch_size=16), root / "run")
    export_run(root / "run", root / "models", "sales", 1)
    return root / "run", root / "models" / "sales", root / "s.csv"


# === A toy language pair (helpers.LEXICON): word for word, so a tiny model learns it in seconds ===

@pytest.fixture(scope="session")
def pair_data(tmp_path_factory):
    """A tab-separated pair file of 300 toy sentences (3-6 words) and their word-for-word translations."""
    rng = random.Random(1)
    words = list(LEXICON)
    lines = []
    for _ in range(300):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 6))) + "."
        lines.append(f"{sentence}\t{toy_translation(sentence)}\tCC-BY 2.0 (France) Attribution: tatoeba.org")
    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_translation_config(pair_data):
    from toolkit.tasks.translation import TrainConfig

    return TrainConfig(pairs=str(pair_data), vocabulary_size=40, units=32, embedding_dim=16, decoder_layers=2,
                       dropout=0.0, label_smoothing=0.0, learning_rate=0.01, batch_size=8, epochs=15, patience=5,
                       validation_split=0.1, beam_size=3)


@pytest.fixture(scope="session")
def tiny_translation_run(tiny_translation_config, tmp_path_factory):
    from toolkit.tasks.translation import train

    run_dir = tmp_path_factory.mktemp("translation_run") / "tiny"
    train(tiny_translation_config, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_translator(tiny_translation_run, tmp_path_factory):
    """`tiny_translation_run` exported as MODELS/toy_en_de/1; returns MODELS/toy_en_de."""
    from toolkit.tasks.translation import export_run

    models = tmp_path_factory.mktemp("translators")
    export_run(tiny_translation_run, models, "toy_en_de", 1)
    return models / "toy_en_de"


# === Images for the command line: every supported format and mode ===

@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Valid images in every supported format and mode, named by their true colour."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    red = Image.new("RGB", (40, 30), (210, 25, 25))
    gif = [Image.new("P", (20, 20), 0), Image.new("P", (20, 20), 1)]
    gif[0].putpalette([30, 40, 200, 200, 30, 30] + [0] * 762)
    gif[1].putpalette([30, 40, 200, 200, 30, 30] + [0] * 762)
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([200, 30, 30, 0, 0, 0] + [0] * 762)
    return {
        "red.jpg": save(root / "red.jpg", red),
        "red_cmyk.jpg": save(root / "red_cmyk.jpg", red.convert("CMYK")),
        "red.bmp": save(root / "red.bmp", red),
        "red_rgba.png": save(root / "red_rgba.png", red.convert("RGBA")),
        "green_16bit.png": save(root / "green_16bit.png", Image.fromarray(
            np.full((16, 16), 30000, np.uint16)).convert("I;16")),
        "red_palette_alpha.png": save(root / "red_palette_alpha.png", palette, transparency=1),
        "blue_animated.gif": save(root / "blue_animated.gif", gif[0], save_all=True, append_images=gif[1:]),
        "red_1x1.png": save(root / "red_1x1.png", Image.new("RGB", (1, 1), (210, 25, 25))),
        "blue_6000.png": save(root / "blue_6000.png", Image.new("RGB", (6000, 6000), (30, 40, 200))),
    }


# === A toy captioning set: noisy squares of one colour, two captions each ===

@pytest.fixture(scope="session")
def caption_data(tmp_path_factory):
    """Kaggle layout (`Images/*.jpg`, `captions.txt`): 16 images per colour of COLORS, 2 captions each."""
    import csv

    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("captions")
    (root / "Images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for color, rgb in COLORS.items():
        for i in range(16):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 20, (24, 24, 3)), 0, 255).astype("uint8")
            name = f"{color}_{i}.jpg"
            Image.fromarray(pixels).save(root / "Images" / name)
            rows += [(name, f"A {color} square."), (name, f"The square is {color} .")]
    with open(root / "captions.txt", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption"])
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def tiny_caption_config(caption_data):
    from toolkit.tasks.captioning import TrainConfig

    return TrainConfig(data_dir=str(caption_data), encoder="cifar_resnet8", image_size=16, units=16, embedding_dim=16,
                       dropout=0.0, label_smoothing=0.0, min_count=1, learning_rate=0.01, batch_size=8, epochs=8,
                       patience=8, beam_size=2)


@pytest.fixture(scope="session")
def tiny_caption_run(tiny_caption_config, tmp_path_factory):
    """A tiny captioner whose ResNet encoder trained end to end with the decoder."""
    from toolkit.tasks.captioning import train

    run_dir = tmp_path_factory.mktemp("caption_run") / "tiny"
    train(tiny_caption_config, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_captioner(tiny_caption_run, tmp_path_factory):
    """`tiny_caption_run` exported as MODELS/squares/1; returns MODELS/squares."""
    from toolkit.tasks.captioning import export_run

    models = tmp_path_factory.mktemp("captioners")
    export_run(tiny_caption_run, models, "squares", 1)
    return models / "squares"
