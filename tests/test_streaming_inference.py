"""Batch inference that streams: folders as input, chunks answered before the rest is read, a progress bar."""

import io
import itertools
import json
import os
import queue
import re
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner

import cli.predict
from cli.inputs import count_paths, expand
from cli.main import toolkit
from cli.output import Progress, echo
from tests.helpers import REPO

SENTIMENT = REPO / "saved_models" / "sentiment"


class FakeTerminal(io.StringIO):
    """What Progress sees when stderr is a terminal."""

    def isatty(self):
        return True


def the_models_answers(texts):
    """`name<TAB>label<TAB>probability` lines straight from the shipped model, for (name, text) pairs."""
    from toolkit.tasks.text_classification import TextClassifier

    answers = TextClassifier(SENTIMENT).predict([text for _, text in texts])
    return [f"{name}\t{a['label']}\t{a['probability']:.4f}" for (name, _), a in zip(texts, answers)]


@pytest.fixture
def review_folder(tmp_path):
    """reviews/ with four reviews (names out of order on purpose), one empty one and files a folder leaves out."""
    folder = tmp_path / "reviews"
    (folder / "sub").mkdir(parents=True)
    texts = {"b.txt": "A wonderful film, superb acting.", "10.txt": "Dull and boring, I hated it.",
             "2.txt": "Brilliant. I loved every minute.", "a.TXT": "An awful, terrible plot."}
    for name, text in texts.items():
        (folder / name).write_text(text)
    (folder / "empty.txt").write_bytes(b"")
    (folder / ".hidden.txt").write_text("A hidden file is not a review.")
    (folder / "notes.md").write_text("Not a .txt file.")
    (folder / "sub" / "deeper.txt").write_text("A folder is not read recursively.")
    return folder, texts


def test_a_folder_answers_its_txt_files_in_sorted_order(review_folder):
    folder, texts = review_folder
    result = CliRunner().invoke(toolkit, ["predict", str(folder)])
    assert result.exit_code == 1, result.output  # the empty file
    assert result.stderr.splitlines() == [f"Error: {folder / 'empty.txt'}: empty file"]
    order = ["10.txt", "2.txt", "a.TXT", "b.txt"]  # sorted by name; empty.txt comes between a.TXT and b.txt
    assert result.stdout.splitlines() == the_models_answers([(str(folder / n), texts[n]) for n in order])

    listed = CliRunner().invoke(toolkit, ["predict", *(str(folder / n) for n in order)])
    assert listed.exit_code == 0 and listed.stdout == result.stdout  # a folder means its files, nothing more


def test_folders_globs_files_and_stdin_together(review_folder, tmp_path):
    folder, _ = review_folder
    (tmp_path / "nothing").mkdir()
    args = [str(folder / "b.txt"), str(tmp_path / "nothing"), str(folder / "[12]*.txt"), "-"]
    result = CliRunner().invoke(toolkit, ["predict", "--json", *args], input="Superb, I loved it.")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {tmp_path / 'nothing'}: is a folder with no .txt files in it"]
    files = [json.loads(line)["file"] for line in result.stdout.splitlines()]  # strict JSON, one per line
    assert files == [str(folder / "b.txt"), str(folder / "10.txt"), str(folder / "2.txt"), "-"]
    # The progress bar's total counts what expand gives, the folder's error included.
    suffixes = cli.predict.TEXT_SUFFIXES
    assert count_paths(args, suffixes) == len(list(expand(args, suffixes))) == 5


def test_reviews_are_read_a_chunk_at_a_time(tmp_path, monkeypatch):
    review = tmp_path / "review.txt"
    review.write_text("A fine film.")
    taken = []

    def endless():  # no list of all the inputs can be made of these
        for i in itertools.count():
            taken.append(i)
            yield str(review) if i != 3 else str(tmp_path / "missing.txt")

    chunks = cli.predict.text_chunks(endless())
    first = next(chunks)
    assert len(first) == len(taken) == cli.predict.CHUNK  # answered before a single path more is taken
    assert [text for _, text in first[:3]] == ["A fine film."] * 3
    assert "no such file" in str(first[3][1])  # an unreadable file comes in its text's place
    assert len(next(chunks)) == cli.predict.CHUNK and len(taken) == 2 * cli.predict.CHUNK

    monkeypatch.setattr(cli.predict, "CHUNK_TEXT", 30)  # a chunk also ends at this many characters of text
    sizes = [len(chunk) for chunk in itertools.islice(cli.predict.text_chunks(str(review) for _ in range(7)), 3)]
    assert sizes == [3, 3, 1]  # 12 characters a review: the third reaches 30


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_the_first_chunk_is_printed_before_the_last_input_is_read(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    for i in range(cli.predict.CHUNK):
        (folder / f"{i:04d}.txt").write_text("A great film." if i % 2 else "A dull film.")
    fifo = tmp_path / "last.txt"
    os.mkfifo(fifo)  # reading it waits until the test writes it: after the first chunk's answers, or never
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "predict", str(folder), str(fifo)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers = queue.Queue()
    threading.Thread(target=lambda: [answers.put(line) for line in proc.stdout], daemon=True).start()
    try:
        lines = []
        while len(lines) < cli.predict.CHUNK:
            try:
                lines.append(answers.get(timeout=120))
            except queue.Empty:
                pytest.fail(f"no answer within 120 s after {len(lines)} lines: the inputs were not streamed")
        assert lines[0].startswith(str(folder / "0000.txt") + "\t") and lines[-1].startswith(str(folder / "1023.txt"))
        with open(fifo, "w") as f:
            f.write("Superb, I loved it.")
        proc.wait(timeout=120)
        errors = proc.stderr.read()
    finally:
        proc.kill()
    assert proc.returncode == 0, errors
    assert answers.get(timeout=10).startswith(f"{fifo}\t") and answers.empty()
    assert "\r" not in errors and "reviews" not in errors  # stderr is a pipe: no progress drawn


def test_progress_draws_a_bar_on_a_terminal():
    terminal = FakeTerminal()
    progress = Progress("reviews", total=lambda: 10_000, stream=terminal)
    progress.advance(3072)
    line = terminal.getvalue()
    assert re.fullmatch(r"\r  3,072/10,000 reviews \[={9}> {20}\] 30% [\d,]+\.\d/s", line), repr(line)
    progress.advance(1)  # redrawn at most twice a second
    assert terminal.getvalue() == line
    progress.close()  # erased: the terminal's line is left blank
    assert terminal.getvalue() == line + "\r" + " " * (len(line) - 1) + "\r"


def test_progress_after_an_answer_a_full_bar_and_a_narrow_terminal(capsys):
    terminal = FakeTerminal()
    progress = Progress("images", total=4, stream=terminal)
    progress.advance(2)
    drawn = terminal.getvalue()
    echo("an answer")  # the bar is erased first, so the answer gets a line of its own ...
    assert terminal.getvalue() == drawn + "\r" + " " * (len(drawn) - 1) + "\r" and Progress.on_screen is None
    assert capsys.readouterr().out == "an answer\n"
    progress.advance(2)  # ... and drawn again at once, not half a second later
    assert terminal.getvalue().endswith("[" + "=" * 30 + "] 100% " + terminal.getvalue().rsplit(" ", 1)[1])
    progress.close()

    narrow = FakeTerminal()
    progress = Progress("reviews", total=10, stream=narrow)
    progress.columns = 30  # no room for a bar: the count and percentage alone
    progress.advance(3)
    line = narrow.getvalue()
    assert re.fullmatch(r"\r  3/10 reviews 30% [\d,]+\.\d/s", line), repr(line)
    progress.close()


def test_progress_counts_without_a_total_and_draws_nothing_off_a_terminal():
    terminal = FakeTerminal()
    progress = Progress("lines", stream=terminal)
    progress.advance(3)
    assert re.fullmatch(r"\r3 lines \([\d,]+\.\d/s\)", terminal.getvalue()), repr(terminal.getvalue())
    progress.close()

    pipe = io.StringIO()
    progress = Progress("reviews", total=lambda: pytest.fail("counted for a stream that shows nothing"), stream=pipe)
    progress.advance(5)
    progress.close()
    assert pipe.getvalue() == "" and Progress.on_screen is None


def test_translate_counts_the_lines_of_a_file_not_of_a_pipe(tmp_path):
    from cli.translate import count_lines
    from toolkit.user_files import read_lines

    for name, data in {"ends.txt": b"a\n\nb\n", "open.txt": b"a\nb", "one.txt": b"x" * (3 << 20)}.items():
        (tmp_path / name).write_bytes(data)
        assert count_lines(tmp_path / name) == sum(1 for _ in read_lines(tmp_path / name)), name
    assert count_lines("-") is None and count_lines(tmp_path) is None and count_lines(tmp_path / "missing") is None
