"""The cell zoo: IMDB test accuracy and training time per recurrent cell, at equal size and epochs.

Trains each variant with `toolkit train sentiment` (the same command users run), one after
the other so that their times compare, into RUNS/zoo-NAME, then prints a Markdown table
(the README's) and the numbers as JSON on the last line. Interrupted runs resume.

    python benchmarks/cell_zoo.py --data-dir ../shared/data/imdb [--epochs 2] [--runs runs]

Afterwards, `toolkit diagnose gradients --model RUNS/zoo-simple_rnn --model RUNS/zoo-lstm
--model RUNS/zoo-gru` measures how far back the trained models' gradients reach (and the same
with the `-uniform` runs, started from small U(-0.08, 0.08) recurrent weights).
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

# name: options; all share units, embedding size, epochs, vocabulary, length and seed.
VARIANTS = {
    "simple_rnn": ["--unidirectional", "--cell", "simple_rnn", "--activation", "tanh"],
    "simple_rnn-relu": ["--unidirectional", "--cell", "simple_rnn", "--activation", "relu"],
    "lstm": ["--unidirectional", "--cell", "lstm"],
    "gru": ["--unidirectional", "--cell", "gru"],
    "lstm-bidirectional": ["--cell", "lstm", "--bidirectional"],
    "gru-2-layers": ["--unidirectional", "--cell", "gru", "--layers", "2"],
    # The same three cells with the small U(-0.08, 0.08) recurrent initialisation instead of orthogonal.
    "simple_rnn-uniform": ["--unidirectional", "--cell", "simple_rnn", "--activation", "tanh",
                           "--recurrent-init", "uniform"],
    "lstm-uniform": ["--unidirectional", "--cell", "lstm", "--recurrent-init", "uniform"],
    "gru-uniform": ["--unidirectional", "--cell", "gru", "--recurrent-init", "uniform"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="IMDB local copy (default: $TOOLKIT_DATA_DIR/imdb)")
    parser.add_argument("--runs", default="runs", help="where the run folders go")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=400)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()

    toolkit = shutil.which("toolkit") or sys.exit("toolkit is not installed: pip install -e .")
    # The classic many-to-one reader (the last state; no pooling, dropout or bigrams), one direction unless asked.
    common = ["--pooling", "last", "--dropout", "0", "--bigram-buckets", "0", "--vocabulary-size", "20000",
              "--monitor", "val_loss",
              "--units", str(args.units), "--embedding-dim", "128", "--epochs", str(args.epochs), "--patience", "0",
              "--max-length", str(args.max_length), "--clip-norm", "1.0", "--seed", "1"]
    if args.data_dir:
        common += ["--data-dir", args.data_dir]
    rows = []
    for name in args.variants.split(","):
        run_dir = Path(args.runs) / f"zoo-{name}"
        print(f"== {name}: {run_dir}", file=sys.stderr, flush=True)
        subprocess.run([toolkit, "train", "sentiment", *VARIANTS[name], *common, "--out", str(run_dir)], check=True)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        history = json.loads((run_dir / "checkpoint" / "state.json").read_text())["history"]
        rows.append({"variant": name, "options": " ".join(VARIANTS[name]), "parameters": metrics["parameters"],
                     "test_accuracy": round(metrics["test"]["accuracy"], 4),
                     "train_seconds": metrics["train_seconds"],
                     "mean_gradient_norm_last_epoch": round(history[-1].get("gradient_norm", float("nan")), 3),
                     "clipped_fraction_last_epoch": round(history[-1].get("clipped_fraction", float("nan")), 3)})
    print(f"\n{args.epochs} epochs, {args.units} units, embedding 128, reviews cut to {args.max_length} tokens, "
          "clip norm 1.0, seed 1\n")
    print("| variant | options | parameters | IMDB test accuracy | training time | mean gradient norm (last epoch) "
          "| clipped steps (last epoch) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['variant']} | `{r['options']}` | {r['parameters']:,} | {100 * r['test_accuracy']:.2f}% | "
              f"{r['train_seconds']:.0f} s | {r['mean_gradient_norm_last_epoch']} | "
              f"{100 * r['clipped_fraction_last_epoch']:.0f}% |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
