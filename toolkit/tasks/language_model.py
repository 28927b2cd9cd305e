"""Language modelling of reviews end to end: unlabelled text -> recurrent language model -> training
(validation perplexity per epoch) -> the start of a classifier (`toolkit train sentiment --init-from`),
a sampler (`toolkit generate`) and a SavedModel giving the next word's distribution.

The data are IMDB's reviews without their labels: `train/{neg,pos}` and the 50,000 of
`train/unsup`, never `test/` (the classifier is scored there), or any folder of `.txt` files
of your own (`--texts`). Each review is tokenised as the classifier tokenises it (one
`TextPreprocessor`, whose vocabulary, built here from all of these reviews, the classifier then
shares) and read in windows of `sequence_length` steps: backpropagation through time is
truncated there, and every window starts from a zero state.
"""

import dataclasses
import hashlib
import math
import sys
import time
from pathlib import Path

from toolkit import config as settings
from toolkit.errors import ToolkitError
from toolkit.serving import Predictor, batch_size_of, texts_of

KIND = "language_model"
COMMAND = "language-model"  # `toolkit train language-model`
SHIPPED_MODEL = "review_lm"  # the default --model of `toolkit generate`
ENSEMBLES = False
NO_LITERT = "sampling and scoring run through TensorFlow"  # why `toolkit export --format litert` refuses them
MAX_TEXT_FILES = 10_000_000  # a --texts folder with more files is refused before anything is read
MAX_TEXT_BYTES = 10 * 2 ** 20  # a --texts file larger than this is left out (each is read whole), with a note


@dataclasses.dataclass(frozen=True)
class TrainConfig(settings.RunConfig):
    """Everything that decides a language-model run; stored as the run's config.json."""

    data_dir: str = None  # IMDB: None = $TOOLKIT_DATA_DIR/imdb, else download
    texts: str = None  # a folder of .txt files (any depth) instead of IMDB's reviews
    cell: str = "lstm"
    units: int = 256
    embedding_dim: int = 128
    num_layers: int = 1
    dropout: float = 0.1
    samples: int = 1024  # words drawn per batch for the sampled softmax; 0 = full softmax in training too
    vocabulary_size: int = 30000
    max_length: int = 2000  # tokens kept per review
    sequence_length: int = 70  # steps per window: where backpropagation through time is truncated
    validation_fraction: float = 0.01  # of the reviews, held out: the perplexity reported each epoch
    epochs: int = 2
    batch_size: int = 128
    schedule: str = "cosine"
    clip_norm: float = 1.0  # exploding gradients through time: clip the global norm
    patience: int = 2

    def validate(self):
        super().validate()
        settings.choice(self, "cell", settings.CELLS)
        settings.positive(self, "units", "embedding_dim", "num_layers", "max_length", "sequence_length")
        settings.at_least(self, "vocabulary_size", 3)
        settings.at_least(self, "samples", 0)
        settings.fraction(self, "dropout")
        settings.fraction(self, "validation_fraction", open_zero=True)

    def model_settings(self):
        return {k: getattr(self, k) for k in ("cell", "units", "embedding_dim", "num_layers", "dropout", "samples")}


def text_files(config):
    """The training reviews' paths, sorted: IMDB's `train/` (labels ignored) and `train/unsup`, or `--texts`."""
    if config.texts is not None:
        folder = Path(config.texts)
        if not folder.is_dir():
            raise ToolkitError(f"--texts {folder} is not a folder")
        paths, large = [], 0
        for path in folder.rglob("*.txt"):
            if path.is_file():
                if path.stat().st_size > MAX_TEXT_BYTES:
                    large += 1
                    continue
                paths.append(path)
                if len(paths) > MAX_TEXT_FILES:
                    raise ToolkitError(f"--texts {folder} holds more than {MAX_TEXT_FILES:,} .txt files")
        if large:
            print(f"Note: {large} file(s) over {MAX_TEXT_BYTES // 2 ** 20} MB left out of --texts {folder}",
                  file=sys.stderr)
        if not paths:
            raise ToolkitError(f"--texts {folder} holds no .txt files" + (" of a readable size" if large else ""))
        return sorted(paths)
    from toolkit.data import imdb

    root = Path(imdb.find_root(config.data_dir))
    labelled = sorted(p for name in imdb.CLASS_NAMES for p in (root / "train" / name).glob("*.txt"))
    return labelled + imdb.unlabelled_reviews(config.data_dir)


def split(paths, fraction):
    """(training paths, validation paths): each file's place fixed by a hash of its name and size, so the
    split does not move when files are added (and a resumed run finds the same one)."""
    def draw(path):
        key = f"{path.parent.name}/{path.name}:{path.stat().st_size}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") / 2 ** 64

    train, validation = [], []
    for path in paths:
        (validation if draw(path) < fraction else train).append(path)
    if not train or not validation:
        raise ToolkitError(f"{len(paths)} texts leave no training or no validation texts at "
                           f"validation_fraction={fraction}: give more texts")
    return train, validation


def windows(ids, length):
    """One review's ids -> (inputs, next ids), each `[windows, length]`: the review cut into consecutive
    windows, the last padded with 0."""
    import tensorflow as tf

    inputs, targets = ids[:-1], ids[1:]
    frame = lambda x: tf.signal.frame(x, length, length, pad_end=True, pad_value=0)  # noqa: E731
    return tf.data.Dataset.from_tensor_slices((frame(inputs), frame(targets)))


def batches(paths, preprocessor, config, training):
    """Batches of ({"token_ids", "next_ids"}, next ids) from the reviews in `paths` (`tf.data`): token ids
    kept in memory after the first epoch, windows shuffled (training) within a buffer."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    dataset = dataset.map(lambda path: preprocessor.encode_one(tf.io.read_file(path)),
                          num_parallel_calls=tf.data.AUTOTUNE).cache()
    dataset = dataset.flat_map(lambda ids: windows(ids, config.sequence_length))
    if training:
        dataset = dataset.shuffle(20_000, seed=config.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(config.batch_size)
    dataset = dataset.map(lambda x, y: ({"token_ids": x, "next_ids": y}, y))
    return dataset.prefetch(tf.data.AUTOTUNE)


def train(config, run_dir):
    """Trains a language model in `run_dir` (resuming it if interrupted); the metrics written to metrics.json,
    with the validation perplexity (full softmax) of the best epoch."""
    import tensorflow as tf

    from toolkit.layers.softmax import Perplexity, TokenMean
    from toolkit.models.language_model import build_language_model
    from toolkit.preprocessing.text import TextPreprocessor
    from toolkit.training import Run, data_fingerprint

    config.validate()
    paths = text_files(config)  # before the run folder is made: a wrong folder costs nothing
    with Run(run_dir, KIND, config) as run:
        train_paths, validation_paths = split(paths, config.validation_fraction)
        data = data_fingerprint([f"{p.parent.name}/{p.name}:{p.stat().st_size}" for p in paths])
        run.write_config(data=data, texts={"train": len(train_paths), "validation": len(validation_paths)})

        if (run.run_dir / TextPreprocessor.CONFIG_FILE).exists():
            preprocessor = TextPreprocessor.load(run.run_dir)
        else:
            print(f"Building the vocabulary from {len(train_paths):,} training texts...", file=sys.stderr)
            preprocessor = TextPreprocessor(config.vocabulary_size, config.max_length)
            preprocessor.adapt(tf.data.Dataset.from_tensor_slices([str(p) for p in train_paths]).map(
                tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE))
            preprocessor.save(run.run_dir)

        train_batches = batches(train_paths, preprocessor, config, training=True)
        validation_batches = batches(validation_paths, preprocessor, config, training=False)
        model = build_language_model(len(preprocessor.vocabulary), **config.model_settings())
        model.compile(optimizer=run.optimizer(train=train_batches), loss=TokenMean(), metrics=[Perplexity()])
        model, results = run.fit(model, train_batches, validation_batches, monitor="val_loss", mode="min")

        best = results["best_epoch"]
        history = _history(run.run_dir)
        row = next((r for r in history if r.get("epoch") == best), {})
        results["validation"] = {"perplexity": row.get("val_perplexity"), "loss": row.get("val_loss"),
                                 "texts": len(validation_paths)}
        results["train_texts"] = len(train_paths)
        results["vocabulary"] = len(preprocessor.vocabulary)
        return run.finish(results)


def _history(run_dir):
    from toolkit.atomic import read_json

    state = Path(run_dir) / "checkpoint" / "state.json"
    return read_json(state)["history"] if state.exists() else []


# === Export: a SavedModel giving the next word's distribution, and the classifiers' start ===

def language_model_archive(model, preprocessor):
    """`serving_default`: a batch of texts -> `{"log_probabilities"}`, log p(next word | text) over the
    vocabulary, `[batch, vocabulary]`; `score`: a batch of texts -> `{"log_likelihood", "tokens"}`, the
    summed log p of each word given those before it (all but the first word) and how many were scored."""
    import keras
    import tensorflow as tf

    from toolkit.models.language_model import next_word_function

    archive = keras.export.ExportArchive()
    archive.track(preprocessor.vectorizer)
    next_word = next_word_function(model)
    spec = [tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")]

    def serve(text):
        return {"log_probabilities": next_word(preprocessor(text))}

    def score(text):
        ids = preprocessor(text)
        inputs, targets = ids[:, :-1], ids[:, 1:]
        nll = model({"token_ids": inputs, "next_ids": targets}, training=False)
        return {"log_likelihood": -tf.reduce_sum(nll, axis=1),
                "tokens": tf.reduce_sum(tf.cast(targets > 0, tf.int32), axis=1)}

    archive.add_endpoint("serving_default", serve, input_signature=spec)
    archive.add_endpoint("score", score, input_signature=spec)
    return archive


def export_run(run_dir, to, name, version):
    """Exports the run's best language model as `TO/NAME/VERSION`: the SavedModel (`language_model_archive`),
    and in `assets.extra/language_model/` what a classifier starts from (`toolkit.pretraining`)."""
    import toolkit.models.language_model  # noqa: F401  (registers the custom layers for loading)
    from toolkit import export, pretraining, training
    from toolkit.preprocessing.text import TextPreprocessor

    config = training.read_run(run_dir, KIND)
    model, preprocessor = training.load_best(run_dir), TextPreprocessor.load(run_dir)
    metadata = {"kind": KIND, "vocabulary_size": len(preprocessor.vocabulary), "train": config["train"],
                "metrics": config["metrics"], "parameters": model.count_params()}
    architecture = {k: config["train"][k] for k in pretraining.ARCHITECTURE}

    def extras(folder):
        pretraining.write_start(folder / pretraining.START_DIR, architecture, preprocessor.vocabulary,
                                pretraining.transferable_weights(model))

    warmup = [("serving_default", {"text": ["This movie was", "The plot"]})]
    return export.write_saved_model(language_model_archive(model, preprocessor), to, name, version, metadata,
                                    warmup=warmup, extras=extras)


# === Answers: sampling and scoring ===

def sample_words(next_word, vocabulary, prompt, words=40, temperature=1.0, top_k=40, rng=None):
    """Continues `prompt` by `words` words, each drawn from p(next word)^(1/temperature) over the `top_k` most
    likely ones (0: all); `next_word(texts)` gives log p over `vocabulary`. Padding and the unknown word are
    never drawn. Returns the words drawn (lower-case, no punctuation: the tokens the model reads)."""
    import numpy as np

    if not isinstance(words, int) or isinstance(words, bool) or words < 0:
        raise ToolkitError(f"words must be a whole number of at least 0. Received: {words!r}")
    if not (isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)):
        raise ToolkitError(f"temperature must be a positive number. Received: {temperature!r}")
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise ToolkitError(f"top_k must be a whole number of at least 0. Received: {top_k!r}")
    rng = rng if rng is not None else np.random.default_rng()
    drawn = []
    for _ in range(words):
        log_p = np.asarray(next_word([" ".join([prompt, *drawn])])[0], np.float64) / temperature
        log_p[:2] = -np.inf  # padding, [UNK]
        if top_k and top_k < len(log_p):
            log_p[np.argpartition(log_p, -top_k)[:-top_k]] = -np.inf
        p = np.exp(log_p - log_p.max())
        drawn.append(vocabulary[rng.choice(len(p), p=p / p.sum())])
    return drawn


class LanguageModelAnswers:
    """What `LanguageModel` and `RunLanguageModel` share: sampling and scoring over `next_word` and `score`."""

    def generate(self, prompt, words=40, temperature=1.0, top_k=40, seed=None):
        """`{"prompt", "continuation"}`: `prompt` continued by `words` sampled words (`sample_words`)."""
        import numpy as np

        (prompt,) = texts_of([prompt])
        if not self.known_words(prompt):
            raise ToolkitError("the prompt has no word the model knows: give it the first words of a text")
        drawn = sample_words(self.next_word, self.vocabulary, prompt, words, temperature, top_k,
                             np.random.default_rng(seed))
        return {"prompt": prompt, "continuation": " ".join(drawn)}

    def known_words(self, text):
        from toolkit.preprocessing.tokens import words

        known = set(self.vocabulary[2:])
        return [w for w in words(text) if w in known]

    def perplexity(self, texts, batch_size=64):
        """`{"log_likelihood", "tokens", "perplexity"}` per text: how well the model predicts each word from
        those before it (a text of one word has nothing scored: perplexity null)."""
        texts, batch_size = texts_of(texts), batch_size_of(batch_size)
        results = []
        for start in range(0, len(texts), batch_size):
            log_likelihood, tokens = self.score(texts[start:start + batch_size])
            for ll, n in zip(log_likelihood, tokens):
                n = int(n)
                results.append({"log_likelihood": round(float(ll), 4), "tokens": n,
                                "perplexity": round(math.exp(-float(ll) / n), 4) if n else None})
        return results


class LanguageModel(LanguageModelAnswers, Predictor):
    """An exported language model: `next_word(texts)` (log p over the vocabulary), `generate`, `perplexity`."""

    kind = KIND
    signature_names = ("serving_default", "score")

    def __init__(self, path):
        from toolkit import pretraining

        super().__init__(path)
        try:
            path = self.model_dir / pretraining.START_DIR / pretraining.VOCABULARY_FILE
            self.vocabulary = path.read_text(encoding="utf-8").split("\n")[:-1]
        except (OSError, UnicodeDecodeError) as e:
            raise ToolkitError(f"cannot read the language model's vocabulary in {self.model_dir}: {e}") from None

    def next_word(self, texts):
        import tensorflow as tf

        return self.signatures["serving_default"](text=tf.constant(texts, tf.string))["log_probabilities"].numpy()

    def score(self, texts):
        import tensorflow as tf

        outputs = self.signatures["score"](text=tf.constant(texts, tf.string))
        return outputs["log_likelihood"].numpy(), outputs["tokens"].numpy()


class RunLanguageModel(LanguageModelAnswers):
    """The best model of a language-model run folder, answering as `LanguageModel` (`toolkit generate --model RUN`)."""

    runtime = "keras"

    def __init__(self, run_dir):
        from toolkit import training
        from toolkit.models.language_model import next_word_function
        from toolkit.preprocessing.text import TextPreprocessor

        self.model_dir = Path(run_dir)
        self.metadata = training.read_run(run_dir, KIND)
        self.model = training.load_best(run_dir)
        self.preprocessor = TextPreprocessor.load(run_dir)
        self.vocabulary = self.preprocessor.vocabulary
        self._next_word = next_word_function(self.model)

    def next_word(self, texts):
        import numpy as np
        import tensorflow as tf

        return np.asarray(self._next_word(self.preprocessor(tf.constant(texts, tf.string))))

    def score(self, texts):
        import tensorflow as tf

        ids = self.preprocessor(tf.constant(texts, tf.string))
        targets = ids[:, 1:]
        nll = self.model({"token_ids": ids[:, :-1], "next_ids": targets}, training=False)
        return -tf.reduce_sum(nll, axis=1).numpy(), tf.reduce_sum(tf.cast(targets > 0, tf.int32), axis=1).numpy()


def load(model):
    """A language model to answer with: a run folder (its best epoch), or an exported model (name or folder)."""
    from toolkit.training import CONFIG_FILE

    from toolkit.serving import find_model

    if (Path(model) / CONFIG_FILE).is_file():
        return RunLanguageModel(model)
    return LanguageModel(find_model(model))


def evaluate(model_path, data_dir=None, batch_size=64, on_progress=None, sample=None, seed=0):
    """The perplexity of a language model on IMDB's test reviews (never trained on), word by word: all of them, or
    a `sample` of that many drawn with `seed` (the full softmax over every word is the cost)."""
    import random

    from toolkit.data import imdb

    model = load(model_path)
    test = Path(imdb.find_root(data_dir)) / "test"
    paths = sorted(p for name in imdb.CLASS_NAMES for p in (test / name).glob("*.txt"))
    if not paths:
        raise ToolkitError(f"no test reviews in {test}")
    if sample is not None and sample < len(paths):
        paths = sorted(random.Random(seed).sample(paths, sample))
    start, total, tokens = time.monotonic(), 0.0, 0
    for i in range(0, len(paths), batch_size):
        texts = [p.read_bytes().decode("utf-8", errors="replace") for p in paths[i:i + batch_size]]
        log_likelihood, counts = model.score(texts)
        total, tokens = total - float(sum(log_likelihood)), tokens + int(sum(counts))
        if on_progress:
            on_progress(len(texts), len(paths))
    return {"model": str(model.model_dir), "texts": len(paths), "sample_seed": seed if sample else None,
            "tokens": tokens,
            "perplexity": math.exp(total / max(tokens, 1)), "seconds": round(time.monotonic() - start, 1)}


PREDICTOR = LanguageModel
