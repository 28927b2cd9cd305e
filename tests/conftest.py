"""Shared fixtures: tiny data made on the spot, one tiny model trained and exported per session."""

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def needs_data(name):
    """Marks a test that reads ../shared/data/NAME; users who cloned the repository alone have none."""
    return pytest.mark.skipif(not (SHARED_DATA / name).exists(), reason=f"needs ../shared/data/{name}")

POSITIVE = ["great", "wonderful", "loved", "brilliant", "superb"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "dull"]
FILLER = ["the", "movie", "film", "was", "plot", "actors", "a", "it"]


def write_reviews(folder, words, count, rng):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        review = rng.sample(FILLER, 3) + rng.sample(words, 2)
        rng.shuffle(review)
        (folder / f"{i}_1.txt").write_text(" ".join(review).capitalize() + ".<br />", encoding="utf-8")


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
    from toolkit.sentiment import TrainConfig

    return TrainConfig(data_dir=str(text_data), cell="gru", units=8, embedding_dim=8, vocabulary_size=50,
                       max_length=8, batch_size=8, epochs=8, patience=3, learning_rate=0.02, clip_norm=1.0,
                       validation_split=0.2)


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tmp_path_factory):
    """A run folder of a tiny GRU trained on `text_data`."""
    from toolkit.sentiment import train

    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    train(tiny_config, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_model(tiny_run, tmp_path_factory):
    """`tiny_run` exported as MODELS/sentiment/1; returns MODELS/sentiment."""
    from toolkit.sentiment import export_run

    models = tmp_path_factory.mktemp("saved_models")
    export_run(tiny_run, models, "sentiment", 1)
    return models / "sentiment"


COLORS = {"blue": (30, 40, 200), "green": (40, 190, 40), "red": (200, 30, 30)}


@pytest.fixture(scope="session")
def image_data(tmp_path_factory):
    """`ROOT/{train,test}/{blue,green,red}/*.png`: 16x16 noisy squares of one colour each."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 16), ("test", 4)):
        for name, color in COLORS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(color) + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_image_run(image_data, tmp_path_factory):
    from toolkit.images import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("image_run") / "tiny"
    train(TrainConfig(dataset="folder", data_dir=str(image_data), arch="resnet20", width=4, epochs=3,
                      batch_size=8, learning_rate=0.05, warmup_epochs=0, validation_split=0.25), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_image_model(tiny_image_run, tmp_path_factory):
    """`tiny_image_run` exported as MODELS/colors/1; returns MODELS/colors."""
    from toolkit.images import export_run

    models = tmp_path_factory.mktemp("image_models")
    export_run(tiny_image_run, models, "colors", 1)
    return models / "colors"


# A toy language pair: each English word has one German word, in the same order, so a tiny
# model learns it in seconds and its translations can be checked word for word.
LEXICON = {"a": "ein", "dog": "Hund", "cat": "Katze", "man": "Mann", "runs": "rennt", "sleeps": "schläft",
           "sees": "sieht", "big": "großer", "small": "kleiner", "red": "roter", "ball": "Ball", "now": "jetzt"}


def toy_translation(sentence):
    return " ".join(LEXICON[w] for w in sentence.rstrip(".").split()) + "."


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
    from toolkit.translation import TrainConfig

    return TrainConfig(pairs=str(pair_data), vocabulary_size=40, units=32, embedding_dim=16, decoder_layers=2,
                       dropout=0.0, label_smoothing=0.0, learning_rate=0.01, batch_size=16, epochs=25, patience=5,
                       validation_split=0.1, beam_size=3)


@pytest.fixture(scope="session")
def tiny_translation_run(tiny_translation_config, tmp_path_factory):
    from toolkit.translation import train

    run_dir = tmp_path_factory.mktemp("translation_run") / "tiny"
    train(tiny_translation_config, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_translator(tiny_translation_run, tmp_path_factory):
    """`tiny_translation_run` exported as MODELS/toy_en_de/1; returns MODELS/toy_en_de."""
    from toolkit.translation import export_run

    models = tmp_path_factory.mktemp("translators")
    export_run(tiny_translation_run, models, "toy_en_de", 1)
    return models / "toy_en_de"
