"""Benchmark `toolkit predict` with the shipped sentiment model.

Measures, on this machine and in one run:
  1. the wall time of `toolkit predict review.txt` in a fresh process, next to
     `python -c "import tensorflow"` (the floor any TensorFlow command pays);
  2. reviews per second for `toolkit predict` over all 25,000 IMDB test reviews in one call.

    python benchmarks/predict_sentiment.py --data-dir ../shared/data/imdb [--repeats 5]

Prints a table and writes the numbers as JSON to stdout's last line.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time


def timed(cmd, **kwargs):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="IMDB local copy (default: $TOOLKIT_DATA_DIR/imdb)")
    parser.add_argument("--model", default=None, help="model to benchmark (default: the shipped one)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from toolkit.data import imdb

    test_dir = imdb.find_root(args.data_dir) / "test"
    files = sorted(str(p.relative_to(test_dir)) for p in test_dir.glob("*/*.txt"))
    toolkit = shutil.which("toolkit") or sys.exit("toolkit is not installed: pip install -e .")
    model = ["--model", args.model] if args.model else []

    import_tf = [timed([sys.executable, "-c", "import tensorflow"]) for _ in range(args.repeats)]
    one = [timed([toolkit, "predict", files[0], *model], cwd=test_dir) for _ in range(args.repeats)]
    all_seconds = timed([toolkit, "predict", *files, *model], cwd=test_dir)

    results = {
        "import_tensorflow_seconds": round(statistics.median(import_tf), 2),
        "predict_one_review_seconds": round(statistics.median(one), 2),
        "predict_all_reviews": len(files),
        "predict_all_seconds": round(all_seconds, 1),
        "reviews_per_second": round(len(files) / all_seconds, 1),
        "repeats": args.repeats,
    }
    print(f"python -c 'import tensorflow'       {results['import_tensorflow_seconds']:8.2f} s (median of {args.repeats})")
    print(f"toolkit predict review.txt          {results['predict_one_review_seconds']:8.2f} s (median of {args.repeats})")
    print(f"toolkit predict <{len(files)} reviews>    {results['predict_all_seconds']:8.1f} s "
          f"= {results['reviews_per_second']:.0f} reviews/s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
