"""Benchmark `toolkit caption` with the shipped Flickr8k captioner.

Measures, on this machine and in one run:
  1. images per second for `toolkit caption` over the 1,000 Flickr8k test images in one call
     (a fresh process: TensorFlow import, model load, reading, decoding, search, printing),
     with the model's default beam and greedy;
  2. seconds for one image in a fresh process (what a user waits for `toolkit caption photo.jpg`).

    python benchmarks/caption_images.py --data-dir ../shared/data/flickr8k [--model saved_models/captioner]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="Flickr8k local copy (default: $TOOLKIT_DATA_DIR/flickr8k)")
    parser.add_argument("--model", default=None, help="exported model (default: the shipped one)")
    args = parser.parse_args()

    from toolkit.data.captions import load
    from toolkit.serving import models_dir

    model_dir = args.model or str(models_dir() / "captioner")
    toolkit = shutil.which("toolkit") or sys.exit("toolkit is not installed: pip install -e .")
    test = load(args.data_dir)["test"]
    results = {"images": len(test)}
    with tempfile.TemporaryDirectory() as folder:
        for name in test.names:  # the shared copy is a zip: users caption files
            (Path(folder) / name).write_bytes(test.read(name))
        for label, extra in (("default_beam", []), ("greedy", ["--beam-size", "1"])):
            start = time.perf_counter()
            subprocess.run([toolkit, "caption", *test.names, "--model", model_dir, *extra], cwd=folder, check=True,
                           stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            results[f"caption_cli_{label}_seconds"] = round(seconds, 1)
            results[f"caption_cli_{label}_images_per_second"] = round(len(test) / seconds, 1)
        start = time.perf_counter()
        subprocess.run([toolkit, "caption", test.names[0], "--model", model_dir], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL)
        results["one_image_fresh_process_seconds"] = round(time.perf_counter() - start, 2)
    for key, value in results.items():
        print(f"{key:44s} {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
