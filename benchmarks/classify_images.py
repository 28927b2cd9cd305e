"""Benchmark `toolkit classify` with the shipped CIFAR-10 model.

Measures, on this machine and in one run:
  1. images per second for `toolkit classify` over the 10,000 CIFAR-10 test images in one call
     (a fresh process: TensorFlow import, model load, reading, decoding, batching, printing);
  2. images per second for the model alone: the exported `predict_pixels` signature and the
     Keras model's `predict` on the same decoded tensors (no file reading or decoding).

    python benchmarks/classify_images.py --data-dir ../shared/data/cifar10 [--run runs/gpu/cifar10_resnet20w32]
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 local copy (default: $TOOLKIT_DATA_DIR/cifar10)")
    parser.add_argument("--model", default=None, help="exported model (default: the shipped one)")
    parser.add_argument("--run", default=None, help="a run folder whose best.keras to time with model.predict")
    args = parser.parse_args()

    from toolkit.data import images
    from toolkit.serving import models_dir
    from toolkit.tasks.image_classification import ImageClassifier

    model_dir = args.model or str(models_dir() / "cifar10_resnet")
    root = images._extract(next(Path(args.data_dir).glob("*.tar.gz"))) / "cifar10" if args.data_dir else None
    test_dir = root / "test"
    files = sorted(str(p.relative_to(test_dir)) for p in test_dir.glob("*/*.jpg"))
    toolkit = shutil.which("toolkit") or sys.exit("toolkit is not installed: pip install -e .")

    start = time.perf_counter()
    subprocess.run([toolkit, "classify", *files, "--model", model_dir], cwd=test_dir, check=True,
                   stdout=subprocess.DEVNULL)
    cli_seconds = time.perf_counter() - start

    classifier = ImageClassifier(model_dir)
    start = time.perf_counter()
    pixels = [classifier.decode((test_dir / f).read_bytes(), f) for f in files]
    decode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    classifier.predict_pixels(pixels)
    signature_seconds = time.perf_counter() - start
    results = {"images": len(files), "classify_cli_seconds": round(cli_seconds, 1),
               "classify_cli_images_per_second": round(len(files) / cli_seconds, 1),
               "decode_images_per_second": round(len(files) / decode_seconds, 1),
               "predict_pixels_images_per_second": round(len(files) / signature_seconds, 1),
               "flip_average": classifier.metadata.get("flip_average")}
    if args.run:
        import keras
        import numpy as np

        import toolkit.layers.residual  # noqa: F401

        model = keras.saving.load_model(Path(args.run) / "best.keras", compile=False)
        batch = np.stack(pixels)
        model.predict(batch[:256], verbose=0)  # compile outside the timing
        start = time.perf_counter()
        model.predict(batch, batch_size=256, verbose=0)
        results["keras_predict_images_per_second"] = round(len(files) / (time.perf_counter() - start), 1)
    for key, value in results.items():
        print(f"{key:36s} {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
