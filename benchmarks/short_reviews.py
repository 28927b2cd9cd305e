"""How much of a review's verdict its first sentence holds: the linear reference for `--first-sentence`.

A sentiment model scored on each IMDB test review's first sentence alone (`toolkit evaluate sentiment
--first-sentence`) does far worse than on the whole review. Is that the model, or the sentences? This fits
TF-IDF of words and bigrams + logistic regression (scikit-learn) on all 25,000 training reviews, and again on
the training reviews plus their first sentences, and scores each on the whole test reviews and on their first
sentences (cut by the same `toolkit.preprocessing.tokens.first_sentence`). A model that reads words
independently of each other, trained on short texts too, bounds what short texts hold from below.

    python benchmarks/short_reviews.py [--data-dir ../shared/data/imdb] [--c 4 16]

Prints one JSON object per fit; about 3 minutes on 2 cores. Needs scikit-learn (`pip install -e '.[bench]'`).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLASS_NAMES = ("neg", "pos")


def read_split(root, split):
    """(texts, labels 0/1) of `root/split/{neg,pos}/*.txt`."""
    texts, labels = [], []
    for label, name in enumerate(CLASS_NAMES):
        for path in sorted((root / split / name).glob("*.txt")):
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
            labels.append(label)
    return texts, np.array(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=ROOT.parent / "shared" / "data" / "imdb",
                        help="IMDB local copy (aclImdb, a folder holding it, or the tarball)")
    parser.add_argument("--c", type=float, nargs="+", default=[4.0, 16.0], help="inverse L2 strengths fitted")
    args = parser.parse_args()
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise SystemExit("this benchmark needs scikit-learn: pip install -e '.[bench]'") from None

    from toolkit.data import imdb  # no TensorFlow
    from toolkit.preprocessing.tokens import first_sentence

    root = Path(imdb.find_root(args.data_dir))
    train_texts, train_labels = read_split(root, "train")
    test_texts, test_labels = read_split(root, "test")
    test_first = [first_sentence(text) for text in test_texts]
    train_first = [first_sentence(text) for text in train_texts]
    fits = [("whole reviews", train_texts, train_labels),
            ("whole reviews and their first sentences", train_texts + train_first,
             np.concatenate([train_labels, train_labels]))]
    for trained_on, texts, labels in fits:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        features = vectorizer.fit_transform(texts)
        for c in args.c:
            start = time.perf_counter()
            model = LogisticRegression(C=c, max_iter=2000).fit(features, labels)
            print(json.dumps({
                "trained_on": trained_on, "C": c,
                "accuracy_whole": float(np.mean(model.predict(vectorizer.transform(test_texts)) == test_labels)),
                "accuracy_first_sentence": float(np.mean(model.predict(vectorizer.transform(test_first))
                                                         == test_labels)),
                "test_reviews": len(test_texts), "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
