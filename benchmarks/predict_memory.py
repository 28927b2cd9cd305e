"""Benchmark `toolkit predict FOLDER`: does its peak memory stay flat as the number of reviews grows?

Writes N short reviews (a few sentences each, one per file) into a temporary folder for each N,
runs `toolkit predict FOLDER` on it in a fresh process with stdout to /dev/null, and measures that
process's peak resident memory (`os.wait4`'s ru_maxrss, the child's own) and wall time. Prints a
Markdown table and, last, the numbers as one JSON line. The goal: the largest run's peak RSS within
1.3x of the smallest's (the inputs are streamed a chunk at a time; what grows is only a folder's
sorted list of file names, some 70 bytes a file).

    nice python benchmarks/predict_memory.py [--sizes 10000 100000] [--model saved_models/sentiment]

Measured on this 2-core machine (shared, under `nice`), DATE: 2026-11-27, shipped sentiment model
(wall time includes the some 4 s that starting TensorFlow and loading the model take):

    | files | peak RSS MB | wall s | reviews/s |
    |---:|---:|---:|---:|
    | 10,000 | 921.1 | 9.8 | 1,016.8 |
    | 100,000 | 955.2 | 46.0 | 2,176.1 |

    peak RSS, 100,000 files / 10,000 files: 1.04x (goal: at most 1.3x)
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

OPENINGS = ["I watched this film last night.", "This movie came out years ago.", "My friends told me to see it.",
            "I had no expectations going in.", "The trailer looked promising."]
VERDICTS = ["The acting was superb and the story moved me.", "It was dull, slow and far too long.",
            "A wonderful cast and a brilliant script.", "The plot made no sense and the dialogue was awful.",
            "I loved the music and the photography.", "Boring from start to finish, I nearly left.",
            "Some scenes worked, others fell flat.", "The ending was a terrible letdown."]
CLOSINGS = ["I would watch it again.", "Avoid it.", "Recommended for a rainy evening.", "Not worth the ticket.",
            "Ten out of ten.", "Two stars, for the effort."]


def write_reviews(folder, count, seed=0):
    """`count` reviews of three to five sentences, one per file, named 000000.txt onwards."""
    rng = random.Random(seed)
    os.makedirs(folder)
    for i in range(count):
        sentences = [rng.choice(OPENINGS), *rng.sample(VERDICTS, rng.randint(1, 3)), rng.choice(CLOSINGS)]
        with open(os.path.join(folder, f"{i:06d}.txt"), "w", encoding="utf-8") as f:
            f.write(" ".join(sentences))


def measure(command):
    """(peak RSS in MB, wall seconds) of `command` run to completion, stdout and stderr discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN's running maximum
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} exited with {proc.returncode}")
    return usage.ru_maxrss / 1024, seconds  # ru_maxrss is in KB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="reviews per run")
    parser.add_argument("--model", default=None, help="model to benchmark (default: the shipped one)")
    parser.add_argument("--tmp", default=None, help="where to write the reviews (default: the system's temp folder)")
    args = parser.parse_args()

    toolkit = shutil.which("toolkit") or sys.exit("toolkit is not installed: pip install -e .")
    model = ["--model", args.model] if args.model else []
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for count in args.sizes:
            folder = os.path.join(tmp, f"reviews_{count}")
            write_reviews(folder, count)
            rss, seconds = measure([toolkit, "predict", folder, *model])
            rows.append({"files": count, "peak_rss_mb": round(rss, 1), "wall_seconds": round(seconds, 1),
                         "reviews_per_second": round(count / seconds, 1)})
            shutil.rmtree(folder)

    print("| files | peak RSS MB | wall s | reviews/s |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['files']:,} | {row['peak_rss_mb']:,.1f} | {row['wall_seconds']:,.1f} | "
              f"{row['reviews_per_second']:,.1f} |")
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"\npeak RSS, {rows[-1]['files']:,} files / {rows[0]['files']:,} files: {ratio:.2f}x (goal: at most 1.3x)")
    print(json.dumps({"runs": rows, "rss_ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
