"""Writing end-to-end serving models as SavedModels in TF Serving's layout: `TO/NAME/VERSION/`.

Each task builds its `keras.export.ExportArchive` (raw inputs such as text strings or encoded
image bytes in `serving_default`, a dict of self-explaining outputs); this module writes it.
Beside the graph, the version folder holds `assets.extra/toolkit.json` (TF Serving's place
for extra files): what kind of model it is and what it was trained on, so the command line
can refuse a model of the wrong kind.
"""

import datetime
from pathlib import Path

import toolkit
from toolkit.atomic import atomic_path, folder_lock, remove_leftovers, write_json
from toolkit.errors import ToolkitError
from toolkit.serving import METADATA_PATH


def version_dir(to, name, version):
    """`TO/NAME/VERSION`, refusing anything TF Serving would not load as a version."""
    if not isinstance(version, int) or version < 1:
        raise ToolkitError(f"version must be a positive integer. Received: {version!r}")
    if not name or "/" in name or name.startswith("."):
        raise ToolkitError(f"name must be a plain folder name. Received: {name!r}")
    return Path(to) / name / str(version)


def next_version(to, name):
    folder = Path(to) / name
    versions = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return max(versions, default=0) + 1


def write_saved_model(archive, to, name, version, metadata):
    """Writes `archive` to `TO/NAME/VERSION` through a temporary folder renamed into place.

    An existing version is never overwritten: TF Serving may be serving it right now. Exports
    to one model folder take turns (a lock in it, which TF Serving ignores like any name that
    (a lock on the folder), so of two racing exports the second is refused in one line; what
    killed exports left behind is removed first.
    """
    target = version_dir(to, name, version)
    metadata = {**metadata, "name": name, "version": version, "toolkit_version": toolkit.__version__,
                "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with folder_lock(target.parent, f"another export to {target.parent} is running; wait for it, then export again"):
        remove_leftovers(target.parent)
        if target.exists():
            raise ToolkitError(f"{target} already exists and is never overwritten; "
                               f"export as --version {next_version(to, name)}")
        with atomic_path(target) as tmp:
            archive.write_out(str(tmp), verbose=False)
            write_json(tmp / METADATA_PATH, metadata)
    return target
