"""Benchmark sentiment classifiers trained on small labelled subsets of IMDB, scored on the full test split.

At each size N (balanced: N/2 reviews per class, drawn with a fixed seed, each subset inside the next larger
one, so sizes differ only in how much data there is), three methods side by side:
  scratch        `toolkit train sentiment` from random weights (the command's defaults, or --scratch-args);
  pretrained     `toolkit train sentiment --init-from LM`: embedding and RNN started from a language model;
  tfidf_logreg   scikit-learn: TF-IDF of words and bigrams + logistic regression, C picked by 5-fold
                 cross-validation on the subset alone.
All three are scored on the same test reviews (IMDB's 25,000).

    python benchmarks/small_data.py --init-from runs/review_lm [--sizes 500 2000 5000] [--seed 0] \
        [--methods scratch pretrained tfidf_logreg] [--scratch-args "--epochs 10"] \
        [--pretrained-args "--epochs 10"] [--data-dir ../shared/data/imdb] [--work /tmp/small_data] \
        [--out benchmarks/results/small_data.json]

Each subset is `WORK/N/train/{neg,pos}/` (links to the original files) beside `WORK/N/test`, a link to the whole
test split, so `toolkit train sentiment --data-dir WORK/N` trains on the subset (holding 10% out for validation
itself) and scores the test split at its end. Its run folder is `WORK/N/METHOD`, its output `WORK/N/METHOD.log`.
A finished run folder (metrics.json) is reused, so the benchmark resumes after an interruption; one trained with
another command is refused (use another --work). Results are written after each method, so partial ones survive.
Networks' seconds are their training epochs (`train_seconds`); TF-IDF's are the C search and the final fit.
An --*-args value that is one option alone needs `=`: --scratch-args=--bidirectional.
"""

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLASS_NAMES = ("neg", "pos")
METHODS = ("scratch", "pretrained", "tfidf_logreg")
FULL_TEST_SPLIT = 25000
OWN_OPTIONS = ("--data-dir", "--out", "--cache", "--init-from")  # set by the benchmark for every run


# === Subsets ===

def draw_subsets(root, sizes, seed):
    """{N: {class: [train paths]}}: N/2 reviews per class, nested (each size's reviews are the first of one fixed
    shuffle per class, so smaller subsets lie inside larger ones)."""
    rng = np.random.default_rng(seed)
    shuffled = {}
    for name in CLASS_NAMES:
        paths = sorted((root / "train" / name).glob("*.txt"))
        shuffled[name] = [paths[i] for i in rng.permutation(len(paths))]
    most = 2 * min(len(p) for p in shuffled.values())
    if max(sizes) > most:
        raise SystemExit(f"--sizes {max(sizes)} is more than {root}/train holds balanced ({most})")
    return {n: {name: paths[:n // 2] for name, paths in shuffled.items()} for n in sizes}


def write_subset(folder, subset, test_dir):
    """`folder/train/<class>/` (links to the subset's files) and `folder/test` (a link to the whole test split);
    an existing subset is kept if it holds the same files, refused otherwise."""
    train, test = folder / "train", folder / "test"
    if train.exists():
        found = {name: sorted(p.name for p in (train / name).glob("*.txt")) for name in CLASS_NAMES}
        if found != {name: sorted(p.name for p in paths) for name, paths in subset.items()}:
            raise SystemExit(f"{train} holds another subset (other --seed or data); use another --work")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".train.", dir=folder))
        for name, paths in subset.items():
            (tmp / name).mkdir()
            for path in paths:
                (tmp / name / path.name).symlink_to(path.resolve())
        tmp.chmod(0o755)  # mkdtemp's folder is private
        os.replace(tmp, train)
    if test.is_symlink() and Path(os.readlink(test)) != test_dir.resolve():
        raise SystemExit(f"{test} links to {os.readlink(test)}, not {test_dir.resolve()}; use another --work")
    if not test.is_symlink():
        test.symlink_to(test_dir.resolve(), target_is_directory=True)


def read_texts(paths):
    return [Path(p).read_bytes().decode("utf-8", errors="replace") for p in paths]


# === Networks: `toolkit train sentiment` ===

def toolkit_command():
    """How to start `toolkit`: its script beside this interpreter (not a pyenv shim, which costs a shell or two)."""
    script = Path(sysconfig.get_path("scripts")) / "toolkit"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from cli.main import main; main()"]


def train_network(folder, method, extra_args, test_reviews):
    """Trains (or reuses) the run `folder/method` on the subset in `folder`; its test accuracy and seconds."""
    run_dir, log = folder / method, folder / f"{method}.log"
    args = ["train", "sentiment", *extra_args, "--data-dir", str(folder), "--out", str(run_dir), "--cache", "memory"]
    metrics_file = run_dir / "metrics.json"
    if metrics_file.exists():
        recorded = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["command"][1:]
        if recorded != args:
            raise SystemExit(f"{run_dir} holds a run trained by another command:\n  {shlex.join(recorded)}\n"
                             f"not\n  {shlex.join(args)}\nuse another --work, or remove that run folder")
        note(f"{folder.name} {method}: reusing {run_dir}")
    else:
        note(f"{folder.name} {method}: training (output in {log})")
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"\n$ toolkit {shlex.join(args)}\n")
            out.flush()
            code = subprocess.run([*toolkit_command(), *args], cwd=ROOT, stdout=out,
                                  stderr=subprocess.STDOUT).returncode
        if code:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
            print("\n".join(tail), file=sys.stderr)
            raise SystemExit(f"toolkit {shlex.join(args)} exited {code}; the whole output is in {log}")
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    if metrics["test_examples"] != test_reviews:
        raise SystemExit(f"{run_dir} was scored on {metrics['test_examples']} test reviews, not the {test_reviews} "
                         f"in {folder / 'test'}")
    return {"accuracy": round(metrics["test"]["accuracy"], 6), "train_seconds": metrics["train_seconds"],
            "epochs_trained": metrics["epochs_trained"], "run": str(run_dir)}


# === TF-IDF + logistic regression ===

def tfidf_logreg(subset, test_texts, test_labels, c_grid, seed):
    """TF-IDF (words and bigrams) + logistic regression fitted on the subset, C picked by 5-fold cross-validation
    on it; its accuracy on the test reviews, the C and the seconds of the search and final fit."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import make_pipeline
    except ImportError:
        raise SystemExit("the tfidf_logreg method needs scikit-learn: pip install scikit-learn") from None

    paths = [p for name in CLASS_NAMES for p in subset[name]]
    labels = [name for name in CLASS_NAMES for _ in subset[name]]
    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                             LogisticRegression(max_iter=1000))
    search = GridSearchCV(pipeline, {"logisticregression__C": c_grid},
                          cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    start = time.perf_counter()
    search.fit(read_texts(paths), labels)  # refits the best C on the whole subset
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(search.predict(test_texts) == np.array(test_labels)))
    return {"accuracy": accuracy, "C": search.best_params_["logisticregression__C"],
            "cv_accuracy": float(search.best_score_), "seconds": round(seconds, 1)}


# === Results ===

def note(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def write_results(path, results):
    """Writes `results` as JSON to `path` atomically: a temporary file beside it, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(results, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def table(results):
    """Test accuracy per size and method, as a Markdown table."""
    lines = ["| size | scratch | pretrained | TF-IDF + LR |", "|---:|---:|---:|---:|"]
    for size in results["sizes"]:
        row = results["results"].get(str(size), {})
        cells = [f"{100 * row[m]['accuracy']:.2f} %" if m in row else "-" for m in METHODS]
        lines.append(f"| {size:,} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=DATA / "imdb",
                        help="IMDB local copy (aclImdb, a folder holding it, or the tarball)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000], help="labelled training reviews")
    parser.add_argument("--seed", type=int, default=0, help="draws the subsets and the cross-validation folds")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--init-from", default=None, help="the pretrained runs' language model (run folder, "
                                                          "exported model or its name); without it they are skipped")
    parser.add_argument("--scratch-args", default="", help="more `toolkit train sentiment` options for scratch runs")
    parser.add_argument("--pretrained-args", default="", help="more options for pretrained runs")
    parser.add_argument("--tfidf-c", type=float, nargs="+", default=[1.0, 4.0, 16.0], help="the C grid searched")
    parser.add_argument("--work", default="/tmp/small_data", help="subsets, run folders and logs")
    parser.add_argument("--out", default=ROOT / "benchmarks" / "results" / "small_data.json")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes))
    if any(n <= 0 or n % 2 for n in sizes):
        parser.error(f"--sizes must be positive and even (half per class). Received: {args.sizes}")
    extra = {"scratch": shlex.split(args.scratch_args), "pretrained": shlex.split(args.pretrained_args)}
    for method, options in extra.items():
        own = [o for o in options if o.split("=")[0] in OWN_OPTIONS]
        if own:
            parser.error(f"--{method}-args may not set {own[0].split('=')[0]}: "
                         f"the benchmark sets {', '.join(OWN_OPTIONS)}")
    methods = [m for m in METHODS if m in args.methods]
    if "pretrained" in methods and args.init_from is None:
        note("no --init-from: skipping the pretrained method")
        methods.remove("pretrained")
    if args.init_from is not None:
        lm = Path(args.init_from).expanduser()
        extra["pretrained"] += ["--init-from", str(lm.resolve()) if lm.exists() else args.init_from]

    from toolkit.data import imdb  # no TensorFlow

    root = Path(imdb.find_root(args.data_dir))
    test_paths = [p for name in CLASS_NAMES for p in sorted((root / "test" / name).glob("*.txt"))]
    test_labels = [p.parent.name for p in test_paths]
    if len(test_paths) != FULL_TEST_SPLIT:
        note(f"warning: {root}/test holds {len(test_paths):,} reviews, not IMDB's {FULL_TEST_SPLIT:,}")
    subsets = draw_subsets(root, sizes, args.seed)
    work = Path(args.work).expanduser().resolve()

    results = {"sizes": sizes, "results": {}, "test_reviews": len(test_paths),
               "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "data": str(root),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "tensorflow": version("tensorflow"), "scikit_learn": version("scikit-learn")}}
    test_texts = None
    for size in sizes:
        folder = work / str(size)
        write_subset(folder, subsets[size], root / "test")
        row = results["results"].setdefault(str(size), {})
        for method in methods:
            if method == "tfidf_logreg":
                note(f"{size} {method}: fitting")
                if test_texts is None:
                    test_texts = read_texts(test_paths)
                row[method] = tfidf_logreg(subsets[size], test_texts, test_labels, args.tfidf_c, args.seed)
            else:
                row[method] = train_network(folder, method, extra[method], len(test_paths))
            note(f"{size} {method}: test accuracy {row[method]['accuracy']:.4f}")
            write_results(args.out, results)

    print(table(results))
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
