"""Peak memory and speed of `toolkit train images` on folders of class folders, streamed from their files.

Measures, on this machine, one epoch of `toolkit train images --arch lenet5 --epochs 1`, each in a
fresh process (its peak RSS from `os.wait4`, its wall time, and the epoch's own seconds from the
run's history.csv, whose train images / seconds is the images/s column):
  1. class folders of 5,000 and 50,000 generated 32x32 JPEGs (10 classes, noisy colour gradients)
     in a temporary folder, streamed (`--dataset folder`): the goal is the 50,000 run's peak RSS
     within 1.3x of the 5,000 run's;
  2. CIFAR-10 (45,000 train images) read into memory as arrays (`--data-dir DIR/cifar10`, the fast
     path; its decoded arrays are cached first, untimed), against the same JPEGs streamed from their
     class folders (the tarball extracted into the temporary folder), without a cache and with
     `--cache memory`.

    nice python benchmarks/train_images_memory.py [--cifar10 ../shared/data/cifar10] [--sizes 5000 50000]

Measured on a 2-core x86-64 VM (no GPU, TensorFlow 2.21 on CPU), 2026-11-27, load average below 1:

| data | files | peak RSS | wall s | epoch s | train images/s |
| --- | ---: | ---: | ---: | ---: | ---: |
| 5,000 generated JPEGs, streamed | 5,000 | 870 MB | 9 | 1.9 | 2,332 |
| 50,000 generated JPEGs, streamed | 50,000 | 930 MB | 24 | 8.4 | 5,357 |
| CIFAR-10, arrays in memory | 50,000 | 3,049 MB | 23 | 8.1 | 5,569 |
| CIFAR-10 JPEGs, streamed | 50,000 | 1,008 MB | 29 | 8.2 | 5,508 |
| CIFAR-10 JPEGs, streamed, `--cache memory` | 50,000 | 1,291 MB | 30 | 9.7 | 4,649 |

Peak RSS of 50,000 files / 5,000 files: 1.07x. Streaming CIFAR-10 runs at 99% of the in-memory
arrays' speed with a third of their memory; the arrays stay the path for the built-in sets.
"""

import argparse
import csv
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["train", "images", "--arch", "lenet5", "--epochs", "1"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[5000, 50000], help="generated folder sizes")
    parser.add_argument("--cifar10", default=str(REPO.parent / "shared" / "data" / "cifar10"),
                        help="folder holding cifar10-jpeg.tar.gz ('' to skip the comparison)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="train-images-memory-"))
    env = {**os.environ, "TOOLKIT_CACHE_DIR": str(work / "cache")}
    rows = []
    try:
        for count in args.sizes:
            folder = make_folders(work / f"jpegs-{count}", count)
            rows.append(measure(f"{count:,} generated JPEGs, streamed", count,
                                ["--dataset", "folder", "--data-dir", str(folder)], work / f"run-{count}", env))
        tarball = Path(args.cifar10) / "cifar10-jpeg.tar.gz" if args.cifar10 else None
        if tarball is not None and tarball.is_file():
            warm = "import sys; from toolkit.data import images; images.load('cifar10', sys.argv[1])"
            subprocess.run([sys.executable, "-c", warm, args.cifar10], cwd=REPO, env=env, check=True)
            rows.append(measure("CIFAR-10, arrays in memory", 50000, ["--data-dir", args.cifar10],
                                work / "run-cifar-arrays", env))
            with tarfile.open(tarball) as tar:
                tar.extractall(work / "cifar", filter="data")
            folder = ["--dataset", "folder", "--data-dir", str(work / "cifar" / "cifar10")]
            rows.append(measure("CIFAR-10 JPEGs, streamed", 50000, folder, work / "run-cifar-stream", env))
            rows.append(measure("CIFAR-10 JPEGs, streamed, `--cache memory`", 50000, [*folder, "--cache", "memory"],
                                work / "run-cifar-memory", env))
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))


def make_folders(root, count, classes=10, size=32):
    """ROOT/class_K/NNNNN.jpg: `count` JPEGs, each a random colour gradient with noise (quality 75)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(count)
    ramp = np.linspace(0.0, 1.0, size)[None, :, None]
    for index in range(count):
        folder = root / f"class_{index % classes}"
        if index < classes:
            folder.mkdir(parents=True)
        low, high = rng.uniform(0, 255, (2, 1, 1, 3))
        pixels = low + (high - low) * ramp + rng.normal(0, 12, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{index:05d}.jpg", quality=75)
    return root


def measure(name, files, options, run_dir, env):
    """One `toolkit train` in a fresh process: its peak RSS (MB), wall seconds, train images and epoch seconds."""
    command = [sys.executable, "-m", "cli.main", *TRAIN, *options, "--out", str(run_dir)]
    print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name} failed:\n{stderr[-3000:]}")
    with open(run_dir / "history.csv") as f:
        epoch = float(next(csv.DictReader(f))["seconds"])
    line = next(line for line in stderr.splitlines() if " train, " in line)  # "lenet5: N parameters; T train, ..."
    train = int(line.split("; ")[1].split(" train")[0])
    return {"name": name, "files": files, "rss_mb": usage.ru_maxrss / 1024, "wall": wall, "train": train,
            "epoch": epoch}


def table(rows):
    lines = ["| data | files | peak RSS | wall s | epoch s | train images/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {row['name']} | {row['files']:,} | {row['rss_mb']:,.0f} MB | {row['wall']:.0f} | "
                     f"{row['epoch']:.1f} | {row['train'] / row['epoch']:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
