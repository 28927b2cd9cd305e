"""Captioned images: Flickr8k's upstream zips, the Kaggle layout and COCO-style JSON."""

import json

import pytest

from tests.helpers import SHARED_DATA, needs_data
from toolkit.data import captions
from toolkit.errors import ToolkitError


@needs_data("flickr8k")
def test_flickr8k_from_its_zips():
    splits = captions.load(SHARED_DATA / "flickr8k")
    assert {k: len(v) for k, v in splits.items()} == {"train": 6000, "validation": 1000, "test": 1000}
    test = splits["test"]
    assert all(len(c) == 5 for c in test.captions)
    assert len(test.pairs()) == 5000
    assert not set(splits["train"].names) & set(test.names)
    assert test.read(test.names[0])[:2] == b"\xff\xd8"  # a JPEG, read from inside the zip


def test_kaggle_layout(tmp_path):
    (tmp_path / "Images").mkdir()
    rows = ["image,caption"]
    for i in range(30):
        (tmp_path / "Images" / f"{i}.jpg").write_bytes(b"\xff\xd8" + bytes([i]))
        rows += [f"{i}.jpg,A dog number {i} runs .", f'{i}.jpg,"A dog, number {i}, plays ."']
    (tmp_path / "captions.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    splits = captions.load(tmp_path, held_out=1000)
    assert {k: len(v) for k, v in splits.items()} == {"train": 24, "validation": 3, "test": 3}
    name = splits["test"].names[0]
    i = int(name.split(".")[0])
    assert splits["test"].captions[0] == [f"A dog number {i} runs .", f"A dog, number {i}, plays ."]
    assert splits["test"].read(name) == b"\xff\xd8" + bytes([i])
    assert captions.load(tmp_path)["test"].names == splits["test"].names  # seeded: the same split every time


def test_coco_json(tmp_path):
    (tmp_path / "img").mkdir()
    images = [{"id": i, "file_name": f"{i:012d}.jpg"} for i in range(12)]
    notes = [{"image_id": i, "caption": f" caption {i}-{k} "} for i in range(12) for k in range(2)]
    for image in images:
        (tmp_path / "img" / image["file_name"]).write_bytes(b"\x89PNG")
    (tmp_path / "img" / "captions_train.json").write_text(json.dumps({"images": images, "annotations": notes}))
    splits = captions.load(tmp_path / "img")
    assert sum(len(s) for s in splits.values()) == 12 and len(splits["test"]) == 1
    assert splits["test"].captions[0][0].startswith("caption ") and splits["test"].read(splits["test"].names[0]) == b"\x89PNG"


def test_refusals(tmp_path):
    with pytest.raises(ToolkitError, match="no captions in"):
        captions.load(tmp_path)
    bad = tmp_path / "x.json"
    bad.write_text('{"images": []}')
    with pytest.raises(ToolkitError, match="not a COCO-style caption file"):
        captions.load(bad)
    (tmp_path / "Flickr8k_text.zip").write_bytes(b"not a zip")
    with pytest.raises(ToolkitError, match="is not a zip file"):
        captions.load(tmp_path)
