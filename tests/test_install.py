"""Models that install: where a model is looked up by name, and a wheel that answers without the repository."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO
from toolkit import serving
from toolkit.errors import ToolkitError
from toolkit.serving import MODELS_DIR_ENV, find_model, models_dir, resolve_model_dir, version_folders

SHIPPED = REPO / "saved_models"


def version(root, name, number):
    """ROOT/NAME/NUMBER holding a saved_model.pb (empty: these tests never load it)."""
    folder = root / name / str(number)
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"")
    return folder


@pytest.fixture
def search_path(tmp_path, monkeypatch):
    """Two folders in $TOOLKIT_MODELS_DIR (A, B), then the repository's models and a package copy (PACKAGE)."""
    folders = {name: tmp_path / name for name in ("A", "B", "PACKAGE")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv(MODELS_DIR_ENV, os.pathsep.join([str(folders["A"]), str(folders["B"])]))
    monkeypatch.setattr(serving, "PACKAGED_MODELS", folders["PACKAGE"])
    return folders


def test_a_name_is_the_newest_version_of_the_first_model_folder_of_that_name(search_path):
    version(search_path["B"], "sentiment", 1)
    newest = version(search_path["B"], "sentiment", 10)  # 10 > 9: numbers, not names
    version(search_path["B"], "sentiment", 9)
    version(search_path["PACKAGE"], "sentiment", 11)
    assert find_model("sentiment") == newest
    assert find_model("cifar10_resnet") == resolve_model_dir(SHIPPED / "cifar10_resnet")  # after the variable's
    only_here = version(search_path["PACKAGE"], "mine", 2)
    assert find_model("mine") == only_here  # the package's copy comes last


def test_paths_are_used_as_they_are(search_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = version(tmp_path / "exports", "sentiment", 3)
    assert find_model(tmp_path / "exports" / "sentiment") == mine  # a model folder: its newest version
    assert find_model(str(mine)) == mine  # a version folder
    assert find_model("exports/sentiment").resolve() == mine  # relative to the working directory
    (tmp_path / "sentiment").mkdir()  # a folder here named like a model does not hide the model...
    assert find_model("sentiment") == find_model(SHIPPED / "sentiment")
    with pytest.raises(ToolkitError, match="is not a model"):  # ...and ./NAME is the folder
        find_model("./sentiment")


def test_callers_that_build_models_dir_slash_name_find_it_anywhere_on_the_path(search_path):
    assert models_dir() == search_path["A"]  # the first folder that exists
    assert resolve_model_dir(models_dir() / "sentiment") == version_folders(SHIPPED / "sentiment")[0]
    assert find_model(models_dir() / "forecast_co2") == version_folders(SHIPPED / "forecast_co2")[0]


def test_a_model_found_nowhere_is_one_line_that_says_where_it_looked_and_what_to_do(search_path, monkeypatch):
    monkeypatch.setenv(MODELS_DIR_ENV, os.pathsep.join([str(search_path["A"]), "/no/such/folder"]))
    with pytest.raises(ToolkitError) as error:
        find_model("sentimnet")
    message = str(error.value)
    assert "\n" not in message and message.startswith("no model named 'sentimnet' in ")
    for part in (str(search_path["A"]), "/no/such/folder (no such folder)", str(SHIPPED), str(search_path["PACKAGE"]),
                 "--model PATH", f"set {MODELS_DIR_ENV}"):
        assert part in message, part
    with pytest.raises(ToolkitError, match=r"^no such model: exports/sentiment \(give an existing model folder"):
        find_model("exports/sentiment")


def test_models_dir_without_the_variable_is_the_repositorys_then_the_packages(monkeypatch, tmp_path):
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert models_dir() == SHIPPED
    monkeypatch.setattr(serving, "SHIPPED_MODELS", tmp_path / "no_checkout")
    monkeypatch.setattr(serving, "PACKAGED_MODELS", tmp_path)
    assert models_dir() == tmp_path


# === The wheel: built, installed apart from the repository, and run ===

SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if resolve_model_dir(p))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip wheel . --no-deps` builds from a copy of what the build reads (older versions included:
    the wheel must leave them out).

    A copy, because setuptools builds in the source tree's build/, which every build in a checkout
    shares; no build isolation, because the environment that runs the tests has setuptools already
    (an isolated build would download it).
    """
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in ("toolkit", "cli", "saved_models"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                             "-w", str(dist), "-q"], cwd=src, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = dist.glob("toolkit-*.whl")
    return built


def newest_in_wheel(name):
    return resolve_model_dir(SHIPPED / name).name


def test_the_wheel_carries_the_newest_version_of_each_shipped_model_and_its_card(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED_NAMES:
        assert f"toolkit/saved_models/{name}/{newest_in_wheel(name)}/saved_model.pb" in names, name
        assert f"toolkit/saved_models/{name}/{newest_in_wheel(name)}/assets.extra/toolkit.json" in names, name
        assert f"toolkit/saved_models/{name}/MODEL_CARD.md" in names, name
    assert [name for name in SHIPPED_NAMES if version_folders(SHIPPED / name)[1:]]  # there are older ones to leave out
    for name in SHIPPED_NAMES:  # versions the repository keeps for rolling back stay out of the wheel
        for older in version_folders(SHIPPED / name)[1:]:
            assert not [n for n in names if n.startswith(f"toolkit/saved_models/{name}/{older.name}/")], older
    assert "cli/main.py" in names and "toolkit/data/co2_mauna_loa.csv" in names
    assert not [n for n in names if n.startswith(("tests/", "saved_models/", "serving/"))]


def test_the_installed_wheel_answers_with_its_own_copy_of_the_models(wheel, tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel),
                             "-q"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    work = tmp_path / "work"  # outside the repository, which is not on the path: only the installed copy is seen
    work.mkdir()
    (work / "review.txt").write_text("One of the best films I have seen in years. Brilliant acting, a moving story "
                                     "and a wonderful score. I loved every minute of it.")
    env = {k: v for k, v in os.environ.items() if k != MODELS_DIR_ENV} | {"PYTHONPATH": str(site)}

    def toolkit(*args):
        return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)

    listed = toolkit("models")
    assert listed.returncode == 0, listed.stderr[-2000:]
    folders = {line.split("\t")[0]: line.split("\t")[-1] for line in listed.stdout.splitlines()}
    installed = site / "toolkit" / "saved_models"
    assert folders == {name: str(installed / name / newest_in_wheel(name)) for name in SHIPPED_NAMES}

    answered = toolkit("predict", "review.txt")
    assert answered.returncode == 0, answered.stderr[-2000:]
    file, label, probability = answered.stdout.strip().split("\t")
    assert (file, label) == ("review.txt", "pos") and float(probability) > 0.8

    missing = toolkit("predict", "review.txt", "--model", "sentimnet")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: no model named 'sentimnet' in ") and str(installed) in missing.stderr
    assert "--model PATH" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
