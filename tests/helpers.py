"""What the tests share besides fixtures: paths, toy data makers and shared assertions.

Tests import from here (`from tests.helpers import ...`); `conftest.py` holds only fixtures.
"""

import io
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def needs_data(name):
    """Marks a test that reads ../shared/data/NAME; users who cloned the repository alone have none."""
    return pytest.mark.skipif(not (SHARED_DATA / name).exists(), reason=f"needs ../shared/data/{name}")


# === Toy reviews: sentiment words among filler, at random places ===

POSITIVE = ["great", "wonderful", "loved", "brilliant", "superb"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "dull"]
FILLER = ["the", "movie", "film", "was", "plot", "actors", "a", "it"]


def write_reviews(folder, words, count, rng):
    """`count` reviews in FOLDER/*.txt, each 3 filler words and 2 of `words` in a random order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        review = rng.sample(FILLER, 3) + rng.sample(words, 2)
        rng.shuffle(review)
        (folder / f"{i}_1.txt").write_text(" ".join(review).capitalize() + ".<br />", encoding="utf-8")


def files_per_class(root):
    """{class folder name: number of files} under ROOT: the size of a split made on the spot."""
    return {folder.name: sum(1 for _ in folder.iterdir()) for folder in sorted(root.iterdir()) if folder.is_dir()}


# === Toy images: one colour each ===

COLORS = {"blue": (30, 40, 200), "green": (40, 190, 40), "red": (200, 30, 30)}


def write_colour_folders(root, counts, size, seed):
    """`ROOT/{split}/{blue,green,red}/*.png` for each `split: count` of `counts`: SIZExSIZE squares of one colour,
    from plain to noisy (a standard deviation drawn from 0 to 25 each), so a plain square is no stranger to a model."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for name, color in COLORS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                noise = rng.normal(0, rng.uniform(0, 25), (size, size, 3))
                pixels = np.clip(np.array(color) + noise, 0, 255).astype("uint8")
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def color_words(sentence):
    """The colour names in a caption, in order."""
    return [word for word in sentence.split() if word in COLORS]


def save(path, image, **kwargs):
    """Saves a PIL image to PATH (or a BytesIO) and returns PATH."""
    image.save(path, **kwargs)
    return path


def hostile(tmp_path):
    """Files that are no usable image, each with the words its error line must contain."""
    import numpy as np
    from PIL import Image

    (tmp_path / "text.jpg").write_text("this is not an image")
    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3)).astype("uint8")
    data = save(io.BytesIO(), Image.fromarray(noise), format="JPEG").getvalue()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.jpg").mkdir()
    tiff = io.BytesIO()
    Image.new("RGB", (4, 4)).save(tiff, format="TIFF")
    (tmp_path / "image.tiff").write_bytes(tiff.getvalue())
    return {"text.jpg": "not an image", "truncated.jpg": "not a readable image", "empty.png": "empty file",
            "folder.jpg": "is a folder", "image.tiff": "TIFF images are not supported", "missing.jpg": "no such file"}


# === A toy language pair ===

# Each English word has one German word, in the same order, so a tiny model learns it in seconds.
LEXICON = {"a": "ein", "dog": "Hund", "cat": "Katze", "man": "Mann", "runs": "rennt", "sleeps": "schläft",
           "sees": "sieht", "big": "großer", "small": "kleiner", "red": "roter", "ball": "Ball", "now": "jetzt"}


def toy_translation(sentence):
    """The word-for-word translation of a sentence of LEXICON's words."""
    return " ".join(LEXICON[w] for w in sentence.rstrip(".").split()) + "."


# === Shared assertions ===

def assert_png(path):
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"


def one_error_line(result):
    """A command that failed with exit code 1 and one `Error: ` line, no traceback; returns that line."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def assert_one_error_line_per_bad_file(result, cases):
    """Exit code 1, and for each of `cases` ({file name: words its message must contain}), in order, one
    `Error: ` line naming the file; no traceback."""
    assert result.exit_code == 1, result.output
    errors = result.stderr.strip().splitlines()
    assert len(errors) == len(cases), result.stderr
    for line, (name, message) in zip(errors, cases.items()):
        assert line.startswith("Error: ") and name in line and message in line, f"{name}: {line}"
    assert "Traceback" not in result.output


# === A cluster on this machine ===

def free_ports(n):
    """`n` TCP ports on 127.0.0.1 that were free a moment ago."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports, index):
    """The TF_CONFIG of worker `index` in a cluster of workers on 127.0.0.1 at `ports`."""
    import json

    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})
