"""Figures: the confusion matrix counted by the report, drawn as a PNG, and written by `toolkit evaluate`."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import toolkit
from tests.helpers import assert_png, files_per_class, one_error_line
from toolkit.errors import ToolkitError
from toolkit.metrics import classification_report
from toolkit.plots import plot_confusion_matrix


def test_the_reports_confusion_counts_are_a_hand_count():
    truth = ["cat", "cat", "cat", "dog", "dog", "bird"]
    guess = ["cat", "dog", "cat", "dog", "bird", "bird"]
    report = classification_report(truth, guess, ["bird", "cat", "dog"])
    # rows = true class, columns = predicted, in the order of the class names
    assert report["confusion_matrix"] == [[1, 0, 0],   # bird: right once
                                          [0, 2, 1],   # cat: right twice, once taken for a dog
                                          [1, 0, 1]]   # dog: once right, once taken for a bird
    assert report["accuracy"] == pytest.approx(4 / 6)
    json.dumps(report, allow_nan=False)  # strict JSON: plain ints, no numpy types


@pytest.mark.parametrize("names", [["neg", "pos"], [f"a long class name {i}" for i in range(12)],
                                   [f"class_{i}" for i in range(100)]], ids=["2", "12 long", "100"])
def test_the_confusion_matrix_is_a_png_of_a_size_that_grows_with_the_classes(names, tmp_path):
    n = len(names)
    matrix = [[10 * (row == column) + (row + column) % 3 for column in range(n)] for row in range(n)]
    path = tmp_path / "report.confusion.png"
    plot_confusion_matrix(matrix, names, path)
    assert_png(path)
    with Image.open(path) as image:
        image.verify()
    width, height = Image.open(path).size
    assert 400 <= width <= 3000 and 300 <= height <= 3000, (width, height)
    assert [p.name for p in tmp_path.iterdir()] == ["report.confusion.png"]  # no temporary file left beside it


def test_a_bad_matrix_or_an_unwritable_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must be 2x2"):
        plot_confusion_matrix([[1, 2, 3]], ["a", "b"], tmp_path / "c.png")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ToolkitError, match="cannot write"):
        plot_confusion_matrix([[1, 0], [0, 1]], ["a", "b"], tmp_path / "file" / "c.png")


def test_evaluate_images_writes_the_confusion_png(tiny_image_model, image_data, tmp_path):
    png = tmp_path / "out" / "report.confusion.png"
    result = CliRunner().invoke(toolkit, ["evaluate", "images", "--model", str(tiny_image_model), "--dataset",
                                          "folder", "--data-dir", str(image_data), "--confusion-png", str(png)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["confusion_png"] == str(png)
    assert sum(map(sum, report["confusion_matrix"])) == sum(files_per_class(image_data / "test").values())
    assert_png(png)
    assert Image.open(png).size[0] >= 400


def evaluate_images(model, data, *arguments):
    return CliRunner().invoke(toolkit, ["evaluate", "images", "--model", str(model), "--dataset", "folder",
                                        "--data-dir", str(data), *arguments])


def test_evaluate_out_writes_the_report_and_its_png_beside_it(tiny_image_model, image_data, tmp_path):
    out = tmp_path / "reports" / "colours.json"  # a folder made as --confusion-png's is
    result = evaluate_images(tiny_image_model, image_data, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == result.stdout  # the report printed, the same strict JSON
    png = tmp_path / "reports" / "colours.confusion.png"
    assert json.loads(result.stdout)["confusion_png"] == str(png)
    assert_png(png)
    assert sorted(p.name for p in out.parent.iterdir()) == ["colours.confusion.png", "colours.json"]  # no temporary

    elsewhere = tmp_path / "matrix.png"
    result = evaluate_images(tiny_image_model, image_data, "--out", str(out), "--confusion-png", str(elsewhere))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["confusion_png"] == str(elsewhere)
    assert_png(elsewhere)


def test_an_unwritable_out_is_one_error_line_before_scoring(tiny_image_model, image_data, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "report.json"
    result = evaluate_images(tiny_image_model, image_data, "--out", str(out))
    assert one_error_line(result) == f"Error: cannot write {out}: {tmp_path / 'file'} is a file, not a folder"
    assert result.stdout == ""  # refused before scoring
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_every_evaluate_command_takes_out():
    from cli.evaluate import evaluate

    for name, command in evaluate.commands.items():
        assert "--out" in [flag for param in command.params for flag in param.opts], name


def test_a_regression_model_gets_a_note_and_no_png(tmp_path):
    import random

    from tests.helpers import NEGATIVE, POSITIVE, write_reviews
    from toolkit.tasks.text_classification import TrainConfig, export_run, train

    rng = random.Random(2)
    for split, count in (("train", 12), ("test", 3)):
        write_reviews(tmp_path / "data" / split / "1", NEGATIVE, count, rng)
        write_reviews(tmp_path / "data" / split / "9", POSITIVE, count, rng)
    train(TrainConfig(data_dir=str(tmp_path / "data"), regression=True, units=4, embedding_dim=4, vocabulary_size=30,
                      max_length=8, batch_size=8, epochs=1, validation_split=0.25), tmp_path / "run")
    export_run(tmp_path / "run", tmp_path / "models", "rating", 1)
    png = tmp_path / "rating.confusion.png"
    result = CliRunner().invoke(toolkit, ["evaluate", "sentiment", "--model", str(tmp_path / "models" / "rating"),
                                          "--data-dir", str(tmp_path / "data"), "--confusion-png", str(png)])
    assert result.exit_code == 0, result.output
    assert "mae" in json.loads(result.stdout) and not png.exists()
    assert result.stderr.splitlines() == [f"Note: a regression model has no confusion matrix; {png} was not written"]

    out = tmp_path / "rating.json"
    result = CliRunner().invoke(toolkit, ["evaluate", "sentiment", "--model", str(tmp_path / "models" / "rating"),
                                          "--data-dir", str(tmp_path / "data"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == result.stdout and not png.exists()  # beside it, as --out names it
    assert result.stderr.splitlines() == [f"Note: a regression model has no confusion matrix; {png} was not written"]
