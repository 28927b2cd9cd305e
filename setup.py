"""Puts the shipped models into the wheel; everything else about the package is in pyproject.toml.

A checkout keeps every version of each model, `saved_models/NAME/VERSION/`. The wheel carries the
newest version of each, with the model's MODEL_CARD.md, as package data under
`toolkit/saved_models/NAME/VERSION/`, so that a plain `pip install` answers `toolkit predict` without
the repository (`toolkit.serving.model_search_path` looks there last). Older versions stay in the
repository only: TF Serving can roll back to them from a checkout, and they would double the wheel.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED_MODELS = Path(__file__).resolve().parent / "saved_models"
PACKAGE_COPY = Path("toolkit") / "saved_models"  # inside the build tree; toolkit.serving.PACKAGED_MODELS


def newest_versions(root):
    """(model folder, its newest numbered version folder) for each model under ROOT, by name."""
    for model in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        versions = [p for p in model.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
        if versions:
            yield model, max(versions, key=lambda p: int(p.name))


class BuildPyWithModels(build_py):
    """`build_py`, then a copy of the newest version of each shipped model (and its card) into the build tree."""

    def run(self):
        super().run()
        if self.editable_mode:  # an editable install finds the repository's saved_models/ itself
            return
        if not SHIPPED_MODELS.is_dir():
            raise SystemExit(f"{SHIPPED_MODELS} is missing: build the wheel from a checkout (pip wheel .), "
                             "not from an sdist, so that it carries the shipped models")
        target = Path(self.build_lib) / PACKAGE_COPY
        shutil.rmtree(target, ignore_errors=True)  # no version left over from an earlier build
        for model, version in newest_versions(SHIPPED_MODELS):
            shutil.copytree(version, target / model.name / version.name)
            card = model / "MODEL_CARD.md"
            if card.is_file():
                shutil.copy2(card, target / model.name / card.name)


setup(cmdclass={"build_py": BuildPyWithModels})
