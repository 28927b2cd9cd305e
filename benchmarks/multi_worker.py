"""Two workers (MultiWorkerMirroredStrategy over TF_CONFIG on 127.0.0.1) against one, on one machine.

    python benchmarks/multi_worker.py [--reviews 1000] [--epochs 3] [--out results.md]

Trains `toolkit train sentiment` on generated toy class folders (REVIEWS per class) once
with one process and once with two worker processes at the same global batch, and prints
a Markdown table: wall time (both processes' start to the last exit), steps per epoch,
final validation accuracy and loss. Both workers share this machine's cores, so no
speed-up is expected here: the table shows what the all-reduce costs, and that the
two-worker run learns what the one-worker run learns.
"""

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import NEGATIVE, POSITIVE, free_ports, tf_config, write_reviews  # noqa: E402

TOOLKIT = [sys.executable, "-c", "from cli.main import main; main()"]


def train(args, workers, logs):
    """Wall seconds of `toolkit ARGS` on `workers` processes (one cluster when more than one)."""
    ports = free_ports(workers)
    start = time.monotonic()
    processes = []
    for index in range(workers):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": tf_config(ports, index) if workers > 1 else ""}
        with open(logs / f"{workers}-{index}.log", "w") as log:
            processes.append(subprocess.Popen(TOOLKIT + args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a worker failed ({codes}); see {logs}")
    return time.monotonic() - start


def summary(run_dir):
    with open(run_dir / "history.csv") as f:
        history = list(csv.DictReader(f))
    with open(run_dir / "gradient_norms.csv") as f:
        steps = Counter(int(row["epoch"]) for row in csv.DictReader(f))
    return {"steps": sorted(set(steps.values())), "val_accuracy": float(history[-1]["val_accuracy"]),
            "val_loss": float(history[-1]["val_loss"]), "epochs": len(history)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1000, help="toy reviews per class in train/")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, help="also write the table here")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = random.Random(0)
        for split, count in (("train", options.reviews), ("test", options.reviews // 10)):
            write_reviews(tmp / "data" / split / "neg", NEGATIVE, count, rng)
            write_reviews(tmp / "data" / split / "pos", POSITIVE, count, rng)
        rows = []
        for workers in (1, 2):
            run_dir = tmp / f"run{workers}"
            args = ["train", "sentiment", "--data-dir", str(tmp / "data"), "--out", str(run_dir),
                    "--epochs", str(options.epochs), "--batch-size", str(options.batch_size), "--units", "32",
                    "--embedding-dim", "32", "--vocabulary-size", "1000",
                    # the model measured before the defaults became the bidirectional GRU with bigrams
                    "--cell", "lstm", "--unidirectional", "--pooling", "last", "--dropout", "0", "--bigram-buckets",
                    "0", "--max-length", "800", "--monitor", "val_loss", "--clip-norm", "0"]
            if workers > 1:
                args += ["--strategy", "multi-worker"]
            seconds = train(args, workers, tmp)
            rows.append((workers, seconds, summary(run_dir)))

    lines = [f"Toy sentiment, {options.reviews} reviews per class ({int(options.reviews * 0.9) * 2} training), "
             f"{options.epochs} epochs, global batch {options.batch_size}; {os.cpu_count()} CPU cores, "
             f"load average {os.getloadavg()[0]:.1f} at the end.", "",
             "| workers | wall s | steps per epoch | final val accuracy | final val loss |",
             "|---:|---:|---:|---:|---:|"]
    for workers, seconds, s in rows:
        lines.append(f"| {workers} | {seconds:.1f} | {', '.join(map(str, s['steps']))} | {s['val_accuracy']:.4f} | "
                     f"{s['val_loss']:.4f} |")
    table = "\n".join(lines)
    print(table)
    if options.out:
        options.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
