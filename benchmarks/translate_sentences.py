"""Benchmark `toolkit translate` with the shipped English-German translator.

Measures, on this machine and in one run, sentences per second for `toolkit translate --file`
over the 1,000 Multi30k test_2016_flickr sentences in one call (process start, TensorFlow
import and model loading included), greedy (beam 1) and with beam search (5), next to
the wall time of translating one sentence in a fresh process.

    python benchmarks/translate_sentences.py --data-dir ../shared/data/multi30k

Prints a table and writes the numbers as JSON to stdout's last line.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="Multi30k local copy (default: $TOOLKIT_DATA_DIR/multi30k)")
    parser.add_argument("--model", default=None, help="model to benchmark (default: the shipped one)")
    parser.add_argument("--split", default="test_2016_flickr")
    parser.add_argument("--beam-sizes", default="1,5")
    args = parser.parse_args()

    from toolkit.data import parallel_text

    sentences = parallel_text.multi30k_split(args.split, "en", "de", args.data_dir).source
    toolkit = shutil.which("toolkit") or sys.exit("toolkit is not installed: pip install -e .")
    model = ["--model", args.model] if args.model else []
    results = {"sentences": len(sentences)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sentences.txt"
        path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        results["one_sentence_seconds"] = round(timed([toolkit, "translate", sentences[0], *model]), 2)
        print(f"toolkit translate 'one sentence'          {results['one_sentence_seconds']:8.2f} s")
        for beam in [int(b) for b in args.beam_sizes.split(",")]:
            seconds = timed([toolkit, "translate", "--file", str(path), "--beam-size", str(beam), *model])
            results[f"beam_{beam}_seconds"] = round(seconds, 1)
            results[f"beam_{beam}_sentences_per_second"] = round(len(sentences) / seconds, 1)
            print(f"toolkit translate --file <{len(sentences)}> --beam-size {beam}  {seconds:8.1f} s "
                  f"= {len(sentences) / seconds:.1f} sentences/s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
