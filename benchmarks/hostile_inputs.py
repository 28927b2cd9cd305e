"""Hostile inputs, before and after a fix: exit code, first stderr line and peak memory of each case (issue 12).

Each case builds its inputs in a temporary folder (a few lines of generator code each), runs
`toolkit ...` on them in a subprocess under `/usr/bin/time -v` and a time limit, and adds a row
to a markdown table: case | command | exit code | first stderr line | peak RSS MB | notes.

    python benchmarks/hostile_inputs.py                                   # this checkout's code
    python benchmarks/hostile_inputs.py --code /work/baseline --out /tmp/hostile_before.md
    python benchmarks/hostile_inputs.py --cases csv_inf,options --timeout 60
    python benchmarks/hostile_inputs.py --list

`--code DIR` picks the checkout whose `cli` and `toolkit` run (it goes first on PYTHONPATH; its
own saved_models/ are the shipped models); the interpreter is this one. Every run gets a fresh
`$TOOLKIT_CACHE_DIR` inside the case's folder, so nothing lands in ~/.cache and nothing is reused.

Nothing can take the machine down or hang:
- every run is killed at its time limit (`--timeout`, or the case's own limit where the limit is
  part of the measurement: 120 s for train_forecast_big, 60 s for translate_many); time -v still
  reports the peak RSS up to then;
- a watchdog polls the RSS of the run's process group and kills it past `--mem-cap-gb` (3 GB):
  the row then says "killed at the 3 GB cap"; an address-space limit (`--as-cap-gb`, 8 GB: TF
  training alone reserves about 4 GB of address space) is the backstop between two polls;
- the memory cases are skipped while less than 4 GB of memory is available, and the tar bomb
  while less than 3 GB of disk is free.

translate_many runs with PYTHONUNBUFFERED=1, so the lines counted at the limit are the lines the
command had written, not what happened to be flushed from a pipe buffer.
"""

import argparse
import dataclasses
import datetime
import io
import json
import math
import os
import pickle
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

GB = 1 << 30
MB = 1 << 20
REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MIN_FREE_MEMORY = 4 * GB
MIN_FREE_DISK = 3 * GB


@dataclasses.dataclass
class Run:
    """One toolkit command of a case: its arguments, inputs and what to say about its outcome."""

    argv: list  # the arguments after `toolkit`
    stdin: str = None  # a file in the case folder fed to standard input
    env: dict = dataclasses.field(default_factory=dict)
    timeout: float = None  # the case's own limit (part of the measurement); default --timeout
    memory: bool = False  # a memory case: skipped unless MIN_FREE_MEMORY is available
    disk: bool = False  # needs MIN_FREE_DISK free in the case folder
    note: object = None  # note(result) -> str, for the notes column
    before: object = None  # before() -> None, called just before the run (e.g. remove a marker)

    def shown(self):
        words = ["toolkit", *(_shell_word(a) for a in self.argv)]
        if self.stdin:
            words += ["<", self.stdin]
        return " ".join(words)


@dataclasses.dataclass
class Result:
    folder: Path
    exit_code: int = None
    signal: int = None
    status: str = ""  # what the exit code column shows
    stderr: str = ""
    stdout_path: Path = None
    peak_rss_mb: float = None
    seconds: float = 0.0
    timed_out: bool = False
    capped: bool = False

    def stdout_lines(self):
        with open(self.stdout_path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()


# === Inputs ===

def write_png(path, size=32, color=(200, 30, 30)):
    from PIL import Image

    Image.new("RGB", (size, size), color).save(path)


def write_animated_gif(path, frames=300, size=2000):
    """`frames` full-canvas frames of one colour each: tiny when compressed, frames*size*size*3 bytes decoded.

    Pillow keeps every frame of an animation in memory while saving, so it encodes two one-frame
    GIFs (black, white) and their compressed image blocks are repeated, alternating.
    """
    from PIL import Image

    blocks = []
    for index in (0, 1):
        image = Image.new("P", (size, size), index)
        image.putpalette([0, 0, 0, 255, 255, 255])
        buffer = io.BytesIO()
        image.save(buffer, "GIF")
        blocks.append(_image_block(buffer.getvalue()))
    control = b"\x21\xf9\x04\x04\x0a\x00\x00\x00"  # disposal 1 (leave in place), 0.1 s, no transparency
    with open(path, "wb") as f:
        f.write(b"GIF89a" + struct.pack("<HHBBB", size, size, 0, 0, 0))  # no global colour table
        for number in range(frames):
            f.write(control + blocks[number % 2])
        f.write(b"\x3b")


def _image_block(gif):
    """The image descriptor and compressed data of a one-frame GIF, its global colour table made local."""
    packed = gif[10]
    position = 13
    table = b""
    if packed & 0x80:
        table = gif[position:position + 3 * 2 ** ((packed & 7) + 1)]
        position += len(table)
    while gif[position] == 0x21:  # extensions: label, then sub-blocks up to a zero length
        position += 2
        while gif[position]:
            position += gif[position] + 1
        position += 1
    assert gif[position] == 0x2C, "no image descriptor"
    descriptor = bytearray(gif[position:position + 10])
    position += 10
    if not descriptor[9] & 0x80:
        descriptor[9] = 0x80 | (packed & 7)
        descriptor += table
    start = position
    position += 1  # LZW minimum code size
    while gif[position]:
        position += gif[position] + 1
    return bytes(descriptor) + gif[start:position + 1]


def write_co2_csv(path, weeks=600, last=None):
    """A weekly CO2-like series (date,co2): trend and a yearly cycle; `last` replaces the final value."""
    start = datetime.date(1990, 1, 7)
    with open(path, "w") as f:
        f.write("date,co2\n")
        for week in range(weeks):
            value = 350 + 0.03 * week + 3 * math.sin(2 * math.pi * week / 52)
            if week == weeks - 1 and last is not None:
                value = last
            f.write(f"{start + datetime.timedelta(weeks=week)},{value!r}\n")


def write_rows(path, header, rows):
    with open(path, "w") as f:
        f.write(header + "\n")
        f.writelines(f"{time_},{value}\n" for time_, value in rows)


class Zeros(io.RawIOBase):
    """`size` NUL bytes, read as a file without holding them."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def add_file(tar, name, data=None, size=None):
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else size
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data) if data is not None else io.BufferedReader(Zeros(size), MB))


def size_mb(path):
    return Path(path).stat().st_size / MB


def disk_usage_mb(folder):
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total / MB


# === Notes ===

def strict_json_note(result):
    """Whether every stdout line parses as strict JSON (NaN and Infinity refused)."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    lines = [line for line in result.stdout_lines() if line.strip()]
    if not lines:
        return "no stdout"
    for number, line in enumerate(lines, 1):
        try:
            json.loads(line, parse_constant=refuse)
        except ValueError as e:
            return f"stdout NOT strict JSON: line {number} ({e}): {_truncate(line, 60)}"
    return f"stdout strict JSON ({len(lines)} lines)"


def stdout_note(result):
    return f"stdout: {_first_line(result.stdout_lines(), '(empty)')}"


def libjpeg_note(result):
    leaked = [line for line in result.stderr.splitlines()
              if "Premature end of JPEG" in line or "Corrupt JPEG" in line or "libjpeg" in line.lower()]
    return f"libjpeg warning leaks to stderr: {_truncate(leaked[0], 50)}" if leaked else "no libjpeg warning on stderr"


# === Cases ===

def case_animated_gif(folder, code):
    """A 300-frame 2000x2000 GIF (decodes to 3.6 GB): classify and caption; a small PNG for the baseline RSS."""
    write_png(folder / "small.png")
    write_animated_gif(folder / "x.gif")
    gif = f"x.gif is {size_mb(folder / 'x.gif'):.1f} MB, 300 frames of 2000x2000"
    return [
        Run(["classify", "small.png"], note=lambda r: "baseline: a 32x32 PNG"),
        Run(["classify", "x.gif"], memory=True, note=lambda r: gif),
        Run(["caption", "x.gif"], memory=True, note=lambda r: gif),
    ]


def case_csv_gap(folder, code):
    """Four rows a second apart, then a year's gap (31.5 million one-second steps); a normal CSV as the baseline."""
    write_co2_csv(folder / "normal.csv")
    start = datetime.datetime(2020, 1, 1)
    rows = [(start + datetime.timedelta(seconds=s), 400.0 + s) for s in range(4)]
    rows.append((start.replace(year=2021), 404.0))
    write_rows(folder / "gap.csv", "date,co2", rows)
    return [
        Run(["forecast", "normal.csv"], note=lambda r: "baseline: 600 weekly rows"),
        Run(["forecast", "gap.csv"], memory=True,
            note=lambda r: "5 rows: 4 one second apart, the 5th a year later"),
    ]


def case_csv_nanosecond(folder, code):
    """200 rows a nanosecond apart."""
    rows = [(f"2020-01-01 00:00:00.{n:09d}", 400.0 + 0.01 * n) for n in range(200)]
    write_rows(folder / "ns.csv", "date,co2", rows)
    return [Run(["forecast", "ns.csv"], memory=True,
                note=lambda r: f"200 rows 1 ns apart; {len(r.stdout_lines())} stdout lines")]


def case_csv_inf(folder, code):
    """A normal weekly series whose last value is inf, or 1e308: is --json output strict JSON?"""
    write_co2_csv(folder / "inf.csv", last=float("inf"))
    write_co2_csv(folder / "huge.csv", last=1e308)
    return [Run(["forecast", "inf.csv", "--json"], note=strict_json_note),
            Run(["forecast", "huge.csv", "--json"], note=strict_json_note)]


def case_train_forecast_big(folder, code):
    """A 1,000,000-row hourly CSV (~37 MB): peak RSS up to a 120 s limit (memory blew up before training)."""
    start = datetime.datetime(1950, 1, 1)
    with open(folder / "big.csv", "w") as f:
        f.write("date,value\n")
        for hour in range(1_000_000):
            value = 300 + 0.0001 * hour + 5 * math.sin(2 * math.pi * hour / 24) + (hour * 7919 % 1000) / 997
            f.write(f"{start + datetime.timedelta(hours=hour):%Y-%m-%dT%H:%M:%S},{value!r}\n")
    size = size_mb(folder / "big.csv")

    def note(result):
        started = any("Epoch" in line or "/step" in line for line in result.stdout_lines())
        limit = "ran to the 120 s limit, peak up to then; " if result.timed_out else ""
        return f"{limit}big.csv {size:.0f} MB; training had started: {'yes' if started else 'no'}"

    return [Run(["train", "forecast", "--csv", "big.csv", "--out", "run", "--epochs", "1", "--window", "104",
                 "--horizon", "52"], timeout=120, memory=True, note=note)]


def case_tar_bomb(folder, code):
    """A ~1 MB .tar.gz holding 1 GB of zeros as aclImdb/train/pos/x.txt: how much lands on disk and in memory."""
    with tarfile.open(folder / "bomb.tar.gz", "w:gz", compresslevel=9) as tar:
        add_file(tar, "aclImdb/train/pos/x.txt", size=GB)
        for n in range(10):  # enough files that a 10% validation split is not empty
            add_file(tar, f"aclImdb/train/pos/{n}.txt", b"A wonderful film, I loved it.\n")
            add_file(tar, f"aclImdb/train/neg/{n}.txt", b"A dull film, I left early.\n")
        add_file(tar, "aclImdb/test/pos/a.txt", b"A wonderful film.\n")
        add_file(tar, "aclImdb/test/neg/b.txt", b"Terrible.\n")
    size = size_mb(folder / "bomb.tar.gz")
    cache = folder / "cache"

    def note(result):
        return f"bomb.tar.gz {size:.1f} MB; extracted to the cache: {disk_usage_mb(cache):.0f} MB"

    return [Run(["train", "sentiment", "--data-dir", "bomb.tar.gz", "--out", "run", "--epochs", "1"],
                env={"TOOLKIT_CACHE_DIR": str(cache)}, memory=True, disk=True, note=note)]


def case_zip_bomb_captions(folder, code):
    """Flickr8k's layout whose Flickr8k.token.txt inflates to 600 MB from a ~1 MB zip."""
    data = folder / "flickr8k"
    data.mkdir()
    names = [f"{n}_0000.jpg" for n in range(3)]
    with zipfile.ZipFile(data / "Flickr8k_Dataset.zip", "w") as images:
        for name in names:
            buffer = io.BytesIO()
            from PIL import Image

            Image.new("RGB", (32, 32), (90, 120, 30)).save(buffer, "JPEG")
            images.writestr(f"Flicker8k_Dataset/{name}", buffer.getvalue())
    line = "".join(f"{name}#{k}\tA dog runs across the green grass in the park .\n" for name in names for k in range(5))
    repeats = 600 * MB // len(line)
    with zipfile.ZipFile(data / "Flickr8k_text.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as text:
        with text.open("Flickr8k.token.txt", "w", force_zip64=True) as member:
            block = line.encode() * 1000
            for _ in range(repeats // 1000):
                member.write(block)
        for split, name in zip(("trainImages", "devImages", "testImages"), names):
            text.writestr(f"Flickr_8k.{split}.txt", name + "\n")
    with zipfile.ZipFile(data / "Flickr8k_text.zip") as text:
        inflated = text.getinfo("Flickr8k.token.txt").file_size
    zipped = size_mb(data / "Flickr8k_text.zip")
    return [Run(["train", "captions", "--data-dir", "flickr8k", "--out", "run", "--epochs", "1"], memory=True,
                note=lambda r: f"Flickr8k_text.zip {zipped:.1f} MB, its token file {inflated / MB:.0f} MB inflated")]


class _Touch:
    """Unpickling this runs `touch PATH`: what a crafted CIFAR-10 batch can do to a reader that unpickles."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def case_cifar_pickle(folder, code):
    """cifar-10-python.tar.gz whose data_batch_1 is a pickle that runs `touch /tmp/PWNED_<random>`."""
    marker = Path(tempfile.gettempdir()) / f"PWNED_{os.urandom(6).hex()}"
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        add_file(tar, "cifar-10-batches-py/data_batch_1", pickle.dumps(_Touch(marker), protocol=2))
        add_file(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": [b"cat"]}, protocol=2))

    def note(result):
        appeared = marker.exists()
        marker.unlink(missing_ok=True)
        return f"marker {marker.name} {'APPEARED: the pickle ran' if appeared else 'did not appear'}"

    return [Run(["train", "images", "--data-dir", "cifar-10-python.tar.gz", "--out", "run", "--epochs", "1"],
                env={"TOOLKIT_CACHE_DIR": str(folder / "cache")}, note=note,
                before=lambda: marker.unlink(missing_ok=True))]


def case_translate_many(folder, code):
    """200,000 one-word lines on stdin, greedy: how many translations had appeared at a 60 s limit."""
    words = ["dog", "man", "boy", "cat", "car"]  # 800 KB in all: under the 1 MB the "before" code reads from stdin
    with open(folder / "lines.txt", "w") as f:
        f.writelines(words[n % len(words)] + "\n" for n in range(200_000))

    def note(result):
        lines = len(result.stdout_lines())
        at = "by the 60 s limit" if result.timed_out else f"in {result.seconds:.0f} s"
        return f"{lines} of 200000 lines on stdout {at}"

    return [Run(["translate", "--beam-size", "1"], stdin="lines.txt", timeout=60, memory=True,
                env={"PYTHONUNBUFFERED": "1"}, note=note)]


def case_truncated_jpeg(folder, code):
    """A JPEG whose header promises 2000x2000, cut after 2 KB."""
    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=90)
    (folder / "cut.jpg").write_bytes(buffer.getvalue()[:2048])
    return [Run(["classify", "cut.jpg"], note=libjpeg_note)]


def _sentiment_copy(folder, code, rewrite):
    source = Path(code) / "saved_models" / "sentiment" / "1"
    shutil.copytree(source, folder / "model" / "1")
    path = folder / "model" / "1" / "assets.extra" / "toolkit.json"
    path.write_text(json.dumps(rewrite(json.loads(path.read_text()))))
    (folder / "review.txt").write_text("A wonderful film: the acting is superb and I loved every minute.\n")
    return [Run(["predict", "review.txt", "--model", "model"], note=stdout_note)]


def case_metadata_list(folder, code):
    """The shipped sentiment model with assets.extra/toolkit.json replaced by a list."""
    return _sentiment_copy(folder, code, lambda metadata: [metadata])


def case_metadata_no_class_names(folder, code):
    """The shipped sentiment model with class_names removed from assets.extra/toolkit.json."""
    return _sentiment_copy(folder, code, lambda metadata: {k: v for k, v in metadata.items() if k != "class_names"})


def case_nul_path(folder, code):
    """Paths on stdin for `classify -`: a path with a NUL byte between two good images."""
    write_png(folder / "a.png", color=(200, 30, 30))
    write_png(folder / "b.png", color=(30, 30, 200))
    (folder / "paths.txt").write_bytes(b"a.png\nbad\x00name.png\nb.png\n")

    def note(result):
        answered = [line.split("\t")[0] for line in result.stdout_lines() if line.strip()]
        return f"answered {len(answered)} of the 2 good images ({', '.join(answered) or 'none'})"

    return [Run(["classify", "-"], stdin="paths.txt", note=note)]


def case_options(folder, code):
    """Out-of-range options: --batch-size 0, --length-penalty nan, --top-k 1000."""
    (folder / "r.txt").write_text("A wonderful film.\n")
    write_png(folder / "img.png")
    return [Run(["predict", "--batch-size", "0", "r.txt"], note=stdout_note),
            Run(["translate", "--length-penalty", "nan", "a"], note=stdout_note),
            Run(["classify", "--top-k", "1000", "img.png"], note=stdout_note)]


def case_out_not_a_run(folder, code):
    """A folder holding a user's file as `--out` of `train forecast`."""
    mine = folder / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n")

    def note(result):
        kept = (mine / "notes.txt").is_file() and (mine / "notes.txt").read_text() == "my notes\n"
        files = sorted(p.name for p in mine.iterdir()) if mine.is_dir() else []
        return (f"notes.txt {'survives' if kept else 'GONE or changed'}; config.json "
                f"{'written' if (mine / 'config.json').exists() else 'not written'}; in mine/: {', '.join(files)}")

    return [Run(["train", "forecast", "--epochs", "1", "--out", "mine"], note=note)]


CASES = {name[len("case_"):]: function for name, function in globals().items() if name.startswith("case_")}


# === Running ===

def measure(run, folder, code, timeout, mem_cap, as_cap):
    """Runs `run` in `folder` under /usr/bin/time -v, a time limit and the memory caps."""
    timefile, stdout_path, stderr_path = folder / ".time", folder / ".stdout", folder / ".stderr"
    for path in (timefile, stdout_path, stderr_path):
        path.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("TOOLKIT_DEBUG", "TOOLKIT_DATA_DIR", "TOOLKIT_MODELS_DIR", "PYTHONUNBUFFERED")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    env["TOOLKIT_CACHE_DIR"] = str(folder / "cache")
    env.update(run.env)
    command = ["/usr/bin/time", "-v", "-o", str(timefile), sys.executable, "-m", "cli.main", *run.argv]

    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (as_cap, as_cap))

    if run.before:
        run.before()
    result = Result(folder, stdout_path=stdout_path)
    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err, \
            open(folder / run.stdin, "rb") if run.stdin else open(os.devnull, "rb") as stdin:
        process = subprocess.Popen(command, cwd=folder, env=env, stdin=stdin, stdout=out, stderr=err,
                                   start_new_session=True, preexec_fn=limits)
        watched_peak = 0
        while process.poll() is None:
            rss = _group_rss(process.pid)
            watched_peak = max(watched_peak, rss)
            if rss > mem_cap:
                result.capped = True
            elif time.monotonic() - start > timeout:
                result.timed_out = True
            if result.capped or result.timed_out:
                _kill_group(process)
                break
            time.sleep(0.05)
    result.seconds = time.monotonic() - start
    result.stderr = ANSI.sub("", stderr_path.read_text(encoding="utf-8", errors="replace"))
    report = timefile.read_text(errors="replace") if timefile.exists() else ""
    if found := re.search(r"Maximum resident set size \(kbytes\): (\d+)", report):
        result.peak_rss_mb = int(found.group(1)) / 1024
    elif watched_peak:
        result.peak_rss_mb = watched_peak / MB
    if found := re.search(r"Command terminated by signal (\d+)", report):
        result.signal = int(found.group(1))
    elif found := re.search(r"Exit status: (\d+)", report):
        result.exit_code = int(found.group(1))
    if result.capped:
        result.status = f"killed at the {mem_cap / GB:g} GB cap"
    elif result.timed_out:
        result.status = f"timeout: killed at {timeout:g} s"
    elif result.signal is not None:
        result.status = f"signal {result.signal} ({signal.Signals(result.signal).name})"
    elif result.exit_code is not None:
        result.status = str(result.exit_code)
    else:
        result.status = f"exit {process.returncode} (no time -v report)"
    if re.search(r"MemoryError|bad_alloc|ResourceExhausted|Cannot allocate memory", result.stderr):
        result.status += f" (out of memory under the {as_cap / GB:g} GB address-space cap)"
    return result


def _group_rss(group):
    """The resident bytes of every process in the process group `group` (the run's session)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ...; rss is the 22nd
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return total


def _kill_group(process):
    """Kills the command under /usr/bin/time first, so time -v still reports its peak; then the rest."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != process.pid:
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == process.pid:
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, ValueError):
                continue
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def available_memory():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_case(name, code, args):
    """The table rows of one case; its folder is removed afterwards unless --keep."""
    folder = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-"))
    rows = []
    try:
        try:
            runs = CASES[name](folder, code)
        except Exception as e:  # a generator that fails is a row, not the end of the table
            return [(name, "(building the inputs)", "not run", f"{type(e).__name__}: {e}", "", "")]
        for run in runs:
            print(f"  {name}: {run.shown()}", file=sys.stderr, flush=True)
            if run.memory and available_memory() < MIN_FREE_MEMORY:
                rows.append((name, run.shown(), "skipped",
                             f"only {available_memory() / GB:.1f} GB of memory available (< 4 GB)", "", ""))
                continue
            if run.disk and shutil.disk_usage(folder).free < MIN_FREE_DISK:
                rows.append((name, run.shown(), "skipped", "less than 3 GB of disk free", "", ""))
                continue
            result = measure(run, folder, code, run.timeout or args.timeout, args.mem_cap_gb * GB, args.as_cap_gb * GB)
            try:
                note = run.note(result) if run.note else ""
            except Exception as e:
                note = f"(note failed: {type(e).__name__}: {e})"
            rss = f"{result.peak_rss_mb:.0f}" if result.peak_rss_mb is not None else "?"
            stderr_lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
            tail = f"{len(stderr_lines)} stderr lines; {result.seconds:.1f} s"
            if len(stderr_lines) > 1:
                tail = f"last stderr line: `{_truncate(stderr_lines[-1], 80)}`; {tail}"
            rows.append((name, run.shown(), result.status, _first_line(result.stderr.splitlines()), rss,
                         f"{note}; {tail}" if note else tail))
            print(f"    -> {result.status}, {rss} MB, {result.seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"  kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def table(rows, code, args):
    revision = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    commit = revision.stdout.strip() or "?"
    if dirty.stdout.strip():
        commit += " + uncommitted changes"
    lines = [f"Hostile inputs, code: `{code}` ({commit}), {datetime.datetime.now():%Y-%m-%d %H:%M}, "
             f"{os.cpu_count()} CPUs; limits: {args.timeout:g} s a run unless the case sets its own, "
             f"{args.mem_cap_gb:g} GB RSS cap, {args.as_cap_gb:g} GB address space.",
             "",
             "| case | command | exit code | first stderr line | peak RSS MB | notes |",
             "|---|---|---|---|---|---|"]
    for case, command, status, first, rss, note in rows:
        cells = [case, f"`{command}`", status, f"`{first}`" if first else "(none)", rss, note]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _first_line(lines, empty=""):
    line = next((line.strip() for line in lines if line.strip()), None)
    return empty if line is None else _truncate(line, 100)


def _truncate(text, width):
    text = text.replace("\x00", "\\0").replace("\t", " ")
    return text if len(text) <= width else text[:width - 3] + "..."


def _shell_word(word):
    return word if re.fullmatch(r"[\w./:=,@+-]+", word) else repr(word)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=REPO,
                        help="the checkout whose code runs (default: the repository holding this script)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    parser.add_argument("--timeout", type=float, default=90, help="seconds a run may take (default: 90)")
    parser.add_argument("--mem-cap-gb", type=float, default=3, help="RSS at which a run is killed (default: 3)")
    parser.add_argument("--as-cap-gb", type=float, default=8, help="address-space limit, the backstop (default: 8)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--keep", action="store_true", help="keep the case folders (their paths go to stderr)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()

    if args.list:
        for name, function in CASES.items():
            print(f"{name:24} {function.__doc__.splitlines()[0]}")
        return
    if not Path("/usr/bin/time").exists():
        sys.exit("/usr/bin/time (GNU time) is needed for the peak RSS: apt-get install time")
    code = args.code.resolve()
    if not (code / "cli" / "main.py").is_file():
        sys.exit(f"{code} holds no cli/main.py: --code takes a checkout of this repository")
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown cases: {', '.join(unknown)} (known: {', '.join(CASES)})")
    rows = []
    for name in names:
        rows += run_case(name, code, args)
    text = table(rows, code, args)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
