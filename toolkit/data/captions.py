"""Images with captions, for captioning: Flickr8k, its Kaggle layout, or COCO-style caption JSON.

Three layouts are read, each into the same `CaptionSplits` (image name -> bytes reader, captions):

- Flickr8k as distributed (and as keras-io's captioning example downloads it): `Flickr8k_Dataset.zip`
  (`Flicker8k_Dataset/<id>.jpg`) and `Flickr8k_text.zip` (`Flickr8k.token.txt`: `<id>.jpg#<0-4><TAB>caption`,
  and `Flickr_8k.{train,dev,test}Images.txt`), zipped or extracted. Images are read from the zip directly.
- the Kaggle layout: `Images/*.jpg` and `captions.txt` (`image,caption` CSV); no official split, so a
  seeded one is made (1,000 test and 1,000 validation images, as Flickr8k's).
- COCO-style: a caption JSON (`{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}`)
  and the folder of its images; a seeded split as for Kaggle, unless separate JSON files are given.

The local copy comes from `--data-dir` or `$TOOLKIT_DATA_DIR/flickr8k`; without one, Flickr8k's two zips
are downloaded into the cache.

A member of a zip is streamed, and refused past `$TOOLKIT_MAX_MEMBER_BYTES` (64 MiB by default; Flickr8k's
captions file is 3.4 MB, an image tens of KB), so a small zip that inflates to gigabytes costs no memory.
"""

import csv
import dataclasses
import io
import json
import random
import zipfile
from pathlib import Path

from toolkit.data import archives, locate
from toolkit.errors import ToolkitError

FLICKR8K_URLS = {
    "Flickr8k_Dataset.zip": "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_Dataset.zip",
    "Flickr8k_text.zip": "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip",
}
FLICKR8K_SPLITS = {"train": "Flickr_8k.trainImages.txt", "validation": "Flickr_8k.devImages.txt",
                   "test": "Flickr_8k.testImages.txt"}


@dataclasses.dataclass
class Captioned:
    """Images of one split: their names, their captions (a list per image), and how to read their bytes."""

    names: list
    captions: list
    read: object  # read(name) -> the encoded image's bytes

    def __len__(self):
        return len(self.names)

    def pairs(self):
        """(image name, caption) for every caption: what training iterates over."""
        return [(name, caption) for name, captions in zip(self.names, self.captions) for caption in captions]


def load(data_dir=None, seed=1337, held_out=1000):
    """`{"train", "validation", "test"}` -> `Captioned`, from whichever layout `data_dir` holds."""
    local = locate.local_copy("flickr8k", data_dir)
    if local is None:
        folder = locate.cache_dir() / "flickr8k"
        for name, url in FLICKR8K_URLS.items():
            archives.download(url, folder / name)
        return _flickr8k(folder)
    if not local.exists():
        raise ToolkitError(f"no such file or folder: {local}")
    if local.is_file() and local.suffix == ".json":
        return _coco(local, local.parent, seed, held_out)
    if (local / "Flickr8k_text.zip").is_file() or (local / "Flickr8k.token.txt").is_file():
        return _flickr8k(local)
    if (local / "captions.txt").is_file():
        return _kaggle(local, seed, held_out)
    jsons = sorted(local.glob("*.json"))
    if len(jsons) == 1:
        return _coco(jsons[0], local, seed, held_out)
    raise ToolkitError(f"no captions in {local}: expected Flickr8k_text.zip (or Flickr8k.token.txt), "
                       "captions.txt with Images/ (Kaggle), or one COCO-style caption .json with its images")


def _flickr8k(folder):
    text = _Files(folder, "Flickr8k_text.zip")
    images = _Files(folder, "Flickr8k_Dataset.zip", prefix="Flicker8k_Dataset/")
    captions = {}
    for number, line in enumerate(text.lines("Flickr8k.token.txt"), 1):
        if not line.strip():
            continue
        key, _, caption = line.partition("\t")
        name = key.split("#")[0]
        if not caption.strip() or not name:
            raise ToolkitError(f"Flickr8k.token.txt, line {number}: expected <image>#<n><TAB><caption>")
        captions.setdefault(name, []).append(caption.strip())
    splits = {}
    for split, listing in FLICKR8K_SPLITS.items():
        names = [n.strip() for n in text.lines(listing) if n.strip()]
        missing = [n for n in names if n not in captions]
        if missing:
            raise ToolkitError(f"{listing} names {len(missing)} images without captions, e.g. {missing[0]}")
        splits[split] = Captioned(names, [captions[n] for n in names], images.read)
    return splits


class _Files:
    """Members of a zip file, or files of the folder it would extract to, by name."""

    def __init__(self, folder, zip_name, prefix=""):
        self.folder, self.prefix = Path(folder), prefix
        self.zip_path = self.folder / zip_name
        self._zip = None

    def read(self, name):
        """The bytes of `name`; a zip member is refused past `$TOOLKIT_MAX_MEMBER_BYTES`."""
        if self.zip_path.is_file():
            try:
                return archives.read_member(self._open_zip(), self.prefix + name)
            except KeyError:
                raise ToolkitError(f"no {self.prefix + name} in {self.zip_path}") from None
        return self._path(name).read_bytes()

    def lines(self, name):
        """The lines of the UTF-8 text `name`, streamed (a zip member, as `read`, is refused past the cap)."""
        if self.zip_path.is_file():
            try:
                stream = archives.capped(self._open_zip().open(self.prefix + name), f"{self.prefix + name} in {self.zip_path}")
            except KeyError:
                raise ToolkitError(f"no {self.prefix + name} in {self.zip_path}") from None
        else:
            stream = open(self._path(name), "rb")
        with io.TextIOWrapper(stream, encoding="utf-8") as text:
            for line in text:
                yield line.rstrip("\r\n")

    def _open_zip(self):
        if self._zip is None:
            try:
                self._zip = zipfile.ZipFile(self.zip_path)
            except zipfile.BadZipFile:
                raise ToolkitError(f"{self.zip_path} is not a zip file") from None
        return self._zip

    def _path(self, name):
        for path in (self.folder / self.prefix / name, self.folder / name):
            if path.is_file():
                return path
        raise ToolkitError(f"no {name} in {self.folder} (nor {self.zip_path.name})")


def _kaggle(folder, seed, held_out):
    captions = {}
    with open(folder / "captions.txt", encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.DictReader(f), 2):
            if not row.get("image") or not (row.get("caption") or "").strip():
                raise ToolkitError(f"{folder / 'captions.txt'}, line {number}: expected image,caption")
            captions.setdefault(row["image"], []).append(row["caption"].strip())
    return _split(captions, lambda name: _read_file(folder / "Images" / name), seed, held_out)


def _coco(json_path, image_folder, seed, held_out):
    try:
        data = json.loads(Path(json_path).read_text(encoding="utf-8"))
        files = {image["id"]: image["file_name"] for image in data["images"]}
        captions = {}
        for annotation in data["annotations"]:
            captions.setdefault(files[annotation["image_id"]], []).append(annotation["caption"].strip())
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ToolkitError(f"{json_path} is not a COCO-style caption file: {e!r}") from None
    return _split(captions, lambda name: _read_file(Path(image_folder) / name), seed, held_out)


def _read_file(path):
    try:
        return path.read_bytes()
    except OSError as e:
        raise ToolkitError(f"cannot read {path}: {e.strerror or e}") from None


def _split(captions, read, seed, held_out):
    names = sorted(captions)
    if len(names) < 3:
        raise ToolkitError(f"{len(names)} captioned images are too few to split into train, validation and test")
    random.Random(seed).shuffle(names)
    held = min(held_out, max(1, len(names) // 10))
    parts = {"test": names[:held], "validation": names[held:2 * held], "train": names[2 * held:]}
    return {split: Captioned(sorted(part), [captions[n] for n in sorted(part)], read) for split, part in parts.items()}

