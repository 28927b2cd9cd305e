"""Benchmark the light path (LiteRT) against TensorFlow with the shipped models, in one run.

Ratios mean something only inside one run on one machine, so everything is measured together:
  1. cold start: each command in a fresh process (median of --repeats, interleaved so that both
     runtimes meet the same load), its peak RSS, and its time as a multiple of `import tensorflow`;
  2. parity and throughput on real test sets, one predictor per runtime in this process: IMDB
     (25,000 reviews), CIFAR-10 (10,000 JPEGs, each runtime decoding the bytes itself, and the two
     decoders alone), Fashion-MNIST (10,000 arrays through `predict_pixels`), the CO2 forecaster's
     test windows;
  3. sizes: each shipped model's SavedModel (saved_model.pb + variables/) beside its LiteRT form.

    python benchmarks/litert.py [--repeats 7] [--only cold,imdb,cifar,fashion,forecast] \
        [--out benchmarks/results/litert.json]

Data default to ../shared/data/{imdb,cifar10,fashion-mnist} beside the repository. A section whose
data or LiteRT form is missing is skipped with a note; `--limit N` cuts every data set to N evenly
spaced examples for quick checks (the JSON says so). MB are 10^6 bytes; RSS is `ru_maxrss` of each
child alone (`os.wait4`). Probabilities are compared as the predictors answer them (rounded to 1e-6).
Load seconds: the first SavedModel loaded in this process pays for importing TensorFlow.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SECTIONS = ("cold", "imdb", "cifar", "fashion", "forecast")
GOALS = {"light_predict_ratio": 0.4, "light_predict_mb": 200, "cifar_same_top1_percent": 99.9,
         "cifar_accuracy_points": 0.05, "forecast_ppm": 1e-3}


class Skip(Exception):
    """A section that cannot run here (its data or the model's LiteRT form is missing): noted, not fatal."""


# === Helpers ===

def shipped(name):
    """The newest version folder of a shipped model (the repository's, whatever $TOOLKIT_MODELS_DIR says)."""
    from toolkit.serving import SHIPPED_MODELS, find_model

    return find_model(SHIPPED_MODELS / name)


def both(name):
    """{"litert": predictor, "tensorflow": predictor} of a shipped model, with each one's load time;
    Skip if it has no LiteRT form yet."""
    import toolkit
    from toolkit.lite import lite_dir

    model_dir = shipped(name)
    if lite_dir(model_dir) is None:
        raise Skip(f"{model_dir} has no LiteRT form yet")
    predictors, load_seconds = {}, {}
    for runtime in ("litert", "tensorflow"):
        start = time.perf_counter()
        predictors[runtime] = toolkit.load(model_dir, runtime=runtime)
        load_seconds[runtime] = round(time.perf_counter() - start, 2)
    return predictors, load_seconds


def spaced(items, limit):
    """`limit` evenly spaced items (all without a limit): a slice that still covers every class."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).astype(int)]


def timed_chunks(predictors, chunks, answer):
    """Runs `answer(predictor, chunk)` for each runtime on each chunk, alternating runtimes chunk by chunk so
    both meet the same load; (answers per runtime in chunk order, seconds per runtime)."""
    answers = {runtime: [] for runtime in predictors}
    seconds = dict.fromkeys(predictors, 0.0)
    for chunk in chunks:
        for runtime, predictor in predictors.items():
            start = time.perf_counter()
            answers[runtime] += answer(predictor, chunk)
            seconds[runtime] += time.perf_counter() - start
    return answers, seconds


def top_k_diff(a, b):
    """The largest |probability difference| over the classes in both answers' top-k lists."""
    pa = {t["label"]: t["probability"] for t in a["top_k"]}
    return max((abs(t["probability"] - pa[t["label"]]) for t in b["top_k"] if t["label"] in pa), default=0.0)


def classification_parity(answers, truth, seconds):
    """Agreement, accuracy and speed of two runtimes' top-k answers (image classifiers)."""
    lite, full = answers["litert"], answers["tensorflow"]
    errors = sum("error" in a for a in lite + full)
    if errors:
        raise RuntimeError(f"{errors} images were not answered: {next(a for a in lite + full if 'error' in a)}")
    n = len(truth)
    return {
        "examples": n,
        "different_top1": sum(a["label"] != b["label"] for a, b in zip(lite, full)),
        "same_top1_percent": 100 * sum(a["label"] == b["label"] for a, b in zip(lite, full)) / n,
        "same_top5_order_percent": 100 * sum([t["label"] for t in a["top_k"]] == [t["label"] for t in b["top_k"]]
                                             for a, b in zip(lite, full)) / n,
        "max_probability_diff": max(top_k_diff(a, b) for a, b in zip(lite, full)),
        **{f"accuracy_percent_{rt}": 100 * sum(a["label"] == t for a, t in zip(answers[rt], truth)) / n
           for rt in answers},
        **{f"images_per_second_{rt}": round(n / seconds[rt], 1) for rt in seconds},
    }


def folder_mb(*paths):
    """Bytes of files and folders (recursively), in MB."""
    total = 0
    for path in map(Path, paths):
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total / 1e6


# === 1. Cold start ===

def run_child(argv, cwd, env):
    """(wall seconds, peak RSS in MB) of one command in a fresh process; RuntimeError if it fails."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        if child.returncode:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {child.returncode}: {stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024 / 1e6  # ru_maxrss: KiB on Linux


def toolkit_command():
    """How to start `toolkit`: its script beside this interpreter (not a pyenv shim, which costs a shell or two)."""
    script = Path(sysconfig.get_path("scripts")) / "toolkit"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from cli.main import main; main()"]


def cold_start(args):
    """Each command's median wall time and peak RSS over --repeats fresh processes, and its time as a multiple of
    `import tensorflow`'s."""
    env = {k: v for k, v in os.environ.items() if k != "TOOLKIT_MODELS_DIR"}  # the shipped models answer
    with tempfile.TemporaryDirectory(prefix="litert-bench-") as work:
        commands, notes = cold_commands(args, Path(work))
        runs = {name: [] for name, _, _ in commands}
        for _ in range(args.repeats):  # interleaved: a burst of load on the machine hits every command alike
            for name, argv, _ in commands:
                runs[name].append(run_child(argv, work, env))
    floor = statistics.median(s for s, _ in runs["import tensorflow"])
    rows = []
    for name, argv, runtime in commands:
        seconds, mb = zip(*runs[name])
        rows.append({"name": name, "runtime": runtime, "argv": [Path(argv[0]).name, *argv[1:]],
                     "seconds_median": round(statistics.median(seconds), 3),
                     "seconds_all": [round(s, 3) for s in seconds],
                     "peak_rss_mb_median": round(statistics.median(mb), 1), "peak_rss_mb_max": round(max(mb), 1),
                     "ratio_to_import_tensorflow": round(statistics.median(seconds) / floor, 3)})
    light = next((r for r in rows if r["name"].startswith("predict (auto")), None)
    goals = {} if light is None else {
        "light_predict_ratio_ok": light["ratio_to_import_tensorflow"] <= GOALS["light_predict_ratio"],
        "light_predict_mb_ok": light["peak_rss_mb_median"] <= GOALS["light_predict_mb"]}
    return {"repeats": args.repeats, "rows": rows, "goals": goals, "notes": notes}


def cold_commands(args, work):
    """([(name, argv, runtime)], notes): `import tensorflow`, then each command as a user types it (auto picks
    LiteRT) and with `--runtime tensorflow`; its input files (a review, a CIFAR-10 JPEG) are written to `work`."""
    from toolkit.lite import choose_runtime

    toolkit = toolkit_command()
    (work / "review.txt").write_text(first_review(args.imdb_dir), encoding="utf-8")
    commands, notes = [("import tensorflow", [sys.executable, "-c", "import tensorflow"], None)], {}
    for command, model, rest in (("predict", "sentiment", ["review.txt"]),
                                 ("classify", "cifar10_resnet", ["photo.jpg"]),
                                 ("forecast", "forecast_co2", ["--steps", "12"])):
        if command == "classify":
            try:
                (work / "photo.jpg").write_bytes(cifar_test(args.cifar_dir, 1)[0][0])
            except Skip as e:
                notes[command] = f"skipped: {e}"
                continue
        auto = choose_runtime(shipped(model), "auto")
        if auto == "litert":
            commands.append((f"{command} (auto = litert)", [*toolkit, command, *rest], "litert"))
        else:
            notes[f"{command} (auto)"] = f"skipped: auto answers {model} through {auto} (no LiteRT form yet)"
        commands.append((f"{command} --runtime tensorflow", [*toolkit, command, *rest, "--runtime", "tensorflow"],
                         "tensorflow"))
    return commands, notes


def first_review(imdb_dir):
    """The first IMDB test review (a stock one without the data)."""
    try:
        texts, _ = imdb_test(imdb_dir, ("neg", "pos"), 1)
        return texts[0]
    except Skip:
        return "A wonderful film: the cast is superb and the story never lets go. I would watch it again."


# === 2. Parity and throughput on real data ===

def imdb_test(data_dir, class_names, limit=None):
    """(texts, labels) of the IMDB test split, read as `text_classification.evaluate` reads them."""
    from toolkit.data import imdb

    if not Path(data_dir).exists():
        raise Skip(f"no IMDB data in {data_dir}")
    test_dir = Path(imdb.find_root(data_dir)) / "test"
    pairs = [(path, name) for name in class_names for path in sorted((test_dir / name).glob("*.txt"))]
    pairs = spaced(pairs, limit)
    return [p.read_bytes().decode("utf-8", errors="replace") for p, _ in pairs], [name for _, name in pairs]


def imdb_parity(args):
    """All IMDB test reviews through both runtimes, in `evaluate`'s length-ordered chunks of batch_size * 16."""
    from toolkit.serving import in_length_order

    predictors, load_seconds = both("sentiment")
    texts, labels = imdb_test(args.imdb_dir, predictors["tensorflow"].class_names, args.limit)
    positions = list(in_length_order(texts, 64 * 16))
    answers, seconds = timed_chunks(predictors, positions,
                                    lambda p, chunk: p.predict([texts[i] for i in chunk], batch_size=64))
    order = [i for chunk in positions for i in chunk]
    by_index = {rt: dict(zip(order, a)) for rt, a in answers.items()}
    lite, full = ([by_index[rt][i] for i in range(len(texts))] for rt in ("litert", "tensorflow"))

    def positive(answer):  # P(pos), comparable even where the labels differ
        return answer["probability"] if answer["label"] == "pos" else 1.0 - answer["probability"]

    diffs = np.array([abs(positive(a) - positive(b)) for a, b in zip(lite, full)])
    n = len(texts)
    return {"examples": n, "load_seconds": load_seconds,
            "same_label": sum(a["label"] == b["label"] for a, b in zip(lite, full)),
            "max_probability_diff": float(diffs.max()),
            "diffs_over_1e-5": int((diffs > 1e-5).sum()), "diffs_over_1e-4": int((diffs > 1e-4).sum()),
            **{f"accuracy_percent_{rt}": 100 * sum(a["label"] == t for a, t in zip(answer, labels)) / n
               for rt, answer in (("litert", lite), ("tensorflow", full))},
            **{f"reviews_per_second_{rt}": round(n / s, 1) for rt, s in seconds.items()}}


def cifar_test(data_dir, limit=None):
    """(JPEG bytes, class names) of the CIFAR-10 test split, read from the tarball (`cifar10/test/<class>/NNNN.jpg`)
    or an extracted copy, without decoding anything."""
    data_dir = Path(data_dir)
    tarball = data_dir if data_dir.is_file() else next(iter(sorted(data_dir.glob("*.tar.gz"))), None)
    if tarball is not None:
        with tarfile.open(tarball) as archive:  # read in the archive's order: a gzip stream seeks backwards slowly
            found = sorted((m.name, archive.extractfile(m).read()) for m in archive
                           if m.isfile() and "/test/" in f"/{m.name}" and m.name.endswith(".jpg"))
        found = spaced(found, limit)
        return [data for _, data in found], [name.split("/")[-2] for name, _ in found]
    test_dir = next((d for d in (data_dir / "test", data_dir / "cifar10" / "test") if d.is_dir()), None)
    if test_dir is None:
        raise Skip(f"no CIFAR-10 data in {data_dir} (a *.tar.gz or a test/<class>/ folder)")
    files = spaced(sorted(test_dir.glob("*/*.jpg")), limit)
    return [p.read_bytes() for p in files], [p.parent.name for p in files]


def cifar_parity(args):
    """The CIFAR-10 test JPEGs through both runtimes' `.predict(bytes)`, and the two decoders alone."""
    from toolkit.preprocessing.image import decode_pixels, light_pixels

    jpegs, truth = cifar_test(args.cifar_dir, args.limit)
    predictors, load_seconds = both("cifar10_resnet")
    if set(truth) - set(predictors["tensorflow"].class_names):
        raise RuntimeError(f"the data's classes {sorted(set(truth))} are not the model's")
    batches = [jpegs[i:i + 256] for i in range(0, len(jpegs), 256)]
    answers, seconds = timed_chunks(predictors, batches, lambda p, batch: p.predict(batch, batch_size=256))
    report = {**classification_parity(answers, truth, seconds), "load_seconds": load_seconds}
    report["accuracy_diff_points"] = abs(report["accuracy_percent_litert"] - report["accuracy_percent_tensorflow"])

    decoders = {}
    sample = spaced(jpegs, 500)
    for name, images, shape in (("native", jpegs, tuple(predictors["tensorflow"].image_shape)),
                                ("48x48x3", sample, (48, 48, 3)),
                                ("16x16x1", sample, (16, 16, 1))):
        pixels, secs = {}, {}
        for decoder, decode in (("tensorflow", decode_pixels), ("litert", light_pixels)):
            start = time.perf_counter()
            pixels[decoder] = np.stack([decode(data, shape) for data in images])
            secs[decoder] = time.perf_counter() - start
        diff = np.abs(pixels["tensorflow"] - pixels["litert"])
        decoders[name] = {"shape": list(shape), "images": len(images),
                          "images_not_equal": int((diff.reshape(len(images), -1).max(axis=1) > 0).sum()),
                          "values_differing_fraction": float((diff > 0).mean()), "max_level_diff": float(diff.max()),
                          **{f"images_per_second_{d}": round(len(images) / s, 1) for d, s in secs.items()}}
    report["decoders"] = decoders
    return report


def fashion_parity(args):
    """The Fashion-MNIST test arrays through both runtimes' `predict_pixels`."""
    from toolkit.data import images

    if not any(Path(args.fashion_dir).glob("t10k-images-idx3-ubyte*")):
        raise Skip(f"no Fashion-MNIST IDX files in {args.fashion_dir}")
    predictors, load_seconds = both("fashion_mnist_resnet")
    splits = images.load("fashion_mnist", args.fashion_dir)
    index = spaced(range(len(splits.test[1])), args.limit)
    pixels, labels = splits.test[0][index], splits.test[1][index]
    truth = [splits.class_names[i] for i in labels]
    batches = [pixels[i:i + 256].astype("float32") for i in range(0, len(pixels), 256)]
    answers, seconds = timed_chunks(predictors, batches, lambda p, batch: p.predict_pixels(batch))
    return {**classification_parity(answers, truth, seconds), "load_seconds": load_seconds}


def forecast_parity(args):
    """The shipped forecaster's test windows (`forecasting.evaluate`'s) through both runtimes."""
    from toolkit.tasks.forecasting import TrainConfig, load_series, split_windows

    predictors, load_seconds = both("forecast_co2")
    config = TrainConfig.from_settings(predictors["tensorflow"].metadata["train"])
    data = load_series(config)
    _, _, test = split_windows(data.values, config)
    outputs, seconds = {}, {}
    for runtime, predictor in predictors.items():
        start = time.perf_counter()
        outputs[runtime] = predictor.predict_windows(test.inputs)
        seconds[runtime] = time.perf_counter() - start
    (lite_mean, lite_std), (full_mean, full_std) = outputs["litert"], outputs["tensorflow"]
    report = {"windows": len(test.ends), "horizon": int(test.targets.shape[1]), "series": data.name,
              "load_seconds": load_seconds,
              "max_forecast_diff_ppm": float(np.abs(lite_mean - full_mean).max()),
              **{f"mae_ppm_{rt}": float(np.abs(mean - test.targets).mean())
                 for rt, (mean, _) in outputs.items()},
              **{f"windows_per_second_{rt}": round(len(test.ends) / s, 1) for rt, s in seconds.items()}}
    if lite_std is not None and full_std is not None:
        report["max_stddev_diff_ppm"] = float(np.abs(lite_std - full_std).max())
    return report


# === 3. Sizes ===

def sizes():
    """Each shipped model's newest SavedModel (saved_model.pb + variables/) beside its LiteRT folder (model.tflite,
    vocabularies, litert.json), in MB."""
    from toolkit.lite import MODEL_FILE, lite_dir
    from toolkit.serving import SHIPPED_MODELS

    rows = []
    for folder in sorted(p for p in SHIPPED_MODELS.iterdir() if p.is_dir()):
        version = shipped(folder.name)
        lite = lite_dir(version)
        row = {"model": f"{folder.name}/{version.name}",
               "saved_model_mb": round(folder_mb(version / "saved_model.pb", version / "variables"), 2),
               "tflite_mb": None, "litert_folder_mb": None}
        if lite is not None:
            row.update(tflite_mb=round(folder_mb(lite / MODEL_FILE), 2), litert_folder_mb=round(folder_mb(lite), 2))
            row["ratio"] = round(row["litert_folder_mb"] / row["saved_model_mb"], 3)
        rows.append(row)
    return rows


# === The table ===

def verdict(ok):
    return "met" if ok else "MISSED"


def table(results):
    """The figures as readable lines."""
    lines = [f"{results['toolkit_version']}", f"{results['date']}   load average before {results['load_before']}, "
             f"after {results['load_after']}   cores {results['cores']}"]
    if results["limit"]:
        lines.append(f"*** --limit {results['limit']}: partial data, quick check only ***")

    def section(title, report, count=None):
        lines.extend(["", f"== {title}" + (f" ({report[count]:,})" if count in report else "")])
        if "skipped" in report:
            lines.append(f"   skipped: {report['skipped']}")
            return False
        return True

    cold = results.get("cold_start")
    if cold and section(f"Cold start (fresh process, median of {cold['repeats']})", cold):
        lines.append(f"   {'command':34} {'seconds':>8} {'x import tf':>11} {'peak MB':>8}")
        for r in cold["rows"]:
            lines.append(f"   {r['name']:34} {r['seconds_median']:8.2f} {r['ratio_to_import_tensorflow']:10.2f}x "
                         f"{r['peak_rss_mb_median']:8.0f}")
        for key, ok in cold["goals"].items():
            lines.append(f"   goal {key.removesuffix('_ok')} <= {GOALS[key.removesuffix('_ok')]}: {verdict(ok)}")
        lines += [f"   note: {k}: {v}" for k, v in cold["notes"].items()]

    def runtimes(report, keys):
        lines.append(f"   {'':34} {'litert':>12} {'tensorflow':>12}")
        for label, key, fmt in keys:
            lines.append(f"   {label:34} {report[key + '_litert']:{fmt}} {report[key + '_tensorflow']:{fmt}}")
        lines.append(f"   {'load seconds':34} {report['load_seconds']['litert']:12.2f} "
                     f"{report['load_seconds']['tensorflow']:12.2f}")

    imdb = results.get("imdb")
    if imdb and section("IMDB test reviews", imdb, "examples"):
        n = imdb["examples"]
        lines += [f"   same label                         {imdb['same_label']:,} of {n:,}",
                  f"   max |P(pos) diff|                  {imdb['max_probability_diff']:.2g}",
                  f"   diffs > 1e-5 / > 1e-4              {imdb['diffs_over_1e-5']:,} / {imdb['diffs_over_1e-4']:,}"]
        runtimes(imdb, [("accuracy %", "accuracy_percent", "12.3f"), ("reviews/s", "reviews_per_second", "12.1f")])

    for key, title in (("cifar10", "CIFAR-10 test JPEGs, decoded by each runtime"),
                       ("fashion_mnist", "Fashion-MNIST test arrays, predict_pixels")):
        report = results.get(key)
        if report and section(title, report, "examples"):
            lines += [f"   same top-1                         {report['same_top1_percent']:.2f} % "
                      f"({report['different_top1']:,} differ)",
                      f"   same top-5 order                   {report['same_top5_order_percent']:.2f} %",
                      f"   max |probability diff|             {report['max_probability_diff']:.2g}"]
            runtimes(report, [("accuracy %", "accuracy_percent", "12.2f"),
                              ("images/s", "images_per_second", "12.1f")])
            if key == "cifar10":
                same, points = GOALS["cifar_same_top1_percent"], GOALS["cifar_accuracy_points"]
                lines.append(f"   goals: same top-1 >= {same} %: {verdict(report['same_top1_percent'] >= same)}; "
                             f"accuracy within {points} points ({report['accuracy_diff_points']:.2f}): "
                             f"{verdict(report['accuracy_diff_points'] <= points)}")
                lines.append(f"   decoders (decode_pixels vs light_pixels) {'images':>7} {'not equal':>9} "
                             f"{'values differ':>13} {'max diff':>8} {'TF img/s':>9} {'Pillow img/s':>12}")
                for name, d in report["decoders"].items():
                    lines.append(f"   {name:40} {d['images']:7,} {d['images_not_equal']:9,} "
                                 f"{100 * d['values_differing_fraction']:12.3f}% {d['max_level_diff']:8.0f} "
                                 f"{d['images_per_second_tensorflow']:9.0f} {d['images_per_second_litert']:12.0f}")

    forecast = results.get("forecast")
    if forecast and section("Forecaster test windows", forecast, "windows"):
        ok = forecast["max_forecast_diff_ppm"] <= GOALS["forecast_ppm"]
        lines.append(f"   max |forecast diff|                {forecast['max_forecast_diff_ppm']:.2g} ppm "
                     f"(goal <= {GOALS['forecast_ppm']:g}: {verdict(ok)})")
        runtimes(forecast, [("MAE ppm", "mae_ppm", "12.4f"), ("windows/s", "windows_per_second", "12.0f")])

    lines.extend(["", "== Sizes (MB)", f"   {'model':26} {'SavedModel':>10} {'model.tflite':>12} {'LiteRT all':>10}"])
    for r in results["sizes"]:
        lite = (f"{r['tflite_mb']:12.2f} {r['litert_folder_mb']:10.2f}" if r["tflite_mb"] is not None
                else f"{'-':>12} {'-':>10}")
        lines.append(f"   {r['model']:26} {r['saved_model_mb']:10.2f} {lite}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per cold-start command")
    parser.add_argument("--imdb-dir", default=DATA / "imdb")
    parser.add_argument("--cifar-dir", default=DATA / "cifar10")
    parser.add_argument("--fashion-dir", default=DATA / "fashion-mnist")
    parser.add_argument("--out", default=ROOT / "benchmarks" / "results" / "litert.json")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--limit", type=int, default=None, help="at most N examples per data set (quick checks)")
    args = parser.parse_args()
    only = args.only.split(",")
    if set(only) - set(SECTIONS) or args.repeats < 1:
        parser.error(f"--only takes {','.join(SECTIONS)} and --repeats at least 1")

    from toolkit.atomic import atomic_path

    version = subprocess.run([*toolkit_command(), "--version"], capture_output=True, text=True).stdout.strip()
    results = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), "toolkit_version": version,
               "python": platform.python_version(), "cores": os.cpu_count(), "limit": args.limit,
               "load_before": [round(x, 2) for x in os.getloadavg()]}
    # Cold start first: before this process imports TensorFlow and holds models in memory.
    for section, key, measure in (("cold", "cold_start", cold_start), ("imdb", "imdb", imdb_parity),
                                  ("cifar", "cifar10", cifar_parity), ("fashion", "fashion_mnist", fashion_parity),
                                  ("forecast", "forecast", forecast_parity)):
        if section not in only:
            continue
        start = time.perf_counter()
        print(f"[{time.strftime('%H:%M:%S')}] {section}...", file=sys.stderr, flush=True)
        try:
            results[key] = measure(args)
        except Skip as e:
            results[key] = {"skipped": str(e)}
        results[key]["section_seconds"] = round(time.perf_counter() - start, 1)
    results["sizes"] = sizes()
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]

    print(table(results))
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
