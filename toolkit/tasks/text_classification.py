"""Text classification (sentiment of reviews, or the user's own classes) end to end:
reviews -> recurrent classifier -> training -> SavedModel taking raw strings -> `TextClassifier`.

`train()` is what `toolkit train sentiment` runs; `export_run()` turns run folders into a
serving model; `evaluate()` scores an exported model on a test split; `TextClassifier`
answers with one.
"""

import dataclasses
import sys
import time
from pathlib import Path

from toolkit import config as settings
from toolkit.data import tfds_data
from toolkit.errors import ToolkitError
from toolkit.lite import LitePredictor
from toolkit.serving import Predictor, batch_size_of, in_length_order, plain, strings, texts_of

KIND = "text_classifier"
COMMAND = "sentiment"  # `toolkit train sentiment`, `toolkit evaluate sentiment`
SHIPPED_MODEL = "sentiment"  # the default --model under saved_models/
ENSEMBLES = True  # `toolkit export RUN RUN ...` averages the members' probabilities
CROP_SHORTEST = 5  # words in the shortest random crop (`--crop`)
POOLINGS = ("last", "max", "mean", "mean_max")
MONITORS = ("val_loss", "val_accuracy")


@dataclasses.dataclass(frozen=True)
class TrainConfig(settings.RunConfig):
    """Everything that decides a text classification run; stored as the run's config.json.

    The defaults are the best recurrent recipe measured (README, "Pretraining on unlabelled reviews"): one
    shipped sentiment member's architecture, trained until the validation accuracy stops improving. They beat
    the classic many-to-one LSTM (the defaults before 2026-12-07: `cell="lstm", embedding_dim=128,
    bidirectional=False, pooling="last", dropout=0, bigram_buckets=0, vocabulary_size=20000, max_length=800,
    epochs=3, patience=2, monitor="val_loss"`, no clipping) on 500, 2,000 and 5,000 IMDB reviews.
    """

    dataset: str = None  # None: IMDB, or the class folders in data_dir; "tfds:NAME": a tensorflow-datasets text set
    data_dir: str = None  # None: $TOOLKIT_DATA_DIR/imdb, else download IMDB; tfds:NAME: tfds' data_dir
    cell: str = "gru"
    units: int = 64
    embedding_dim: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "max"
    activation: str = "tanh"
    recurrent_init: str = "orthogonal"  # see toolkit.config.RECURRENT_INITS
    dropout: float = 0.5
    bigram_buckets: int = 30000  # > 0: add hashed-bigram embeddings to the word embeddings
    bigram_hash: str = "spectral"  # toolkit.config.BIGRAM_HASHES; "vocabulary": how runs before this option hashed
    word_dropout: float = 0.0  # training only: drop this fraction of each review's tokens, anew every epoch
    crop: float = 0.0  # training only: this fraction of reviews, drawn anew every epoch, cut to a random run of words
    l2: float = 0.0
    naive_bayes: bool = False  # with num_layers=0: NBSVM, naive Bayes log-count ratios of words and bigrams, reweighted
    vocabulary_size: int = 30000
    max_length: int = 1000
    epochs: int = 15
    patience: int = 3
    clip_norm: float = 1.0
    monitor: str = None  # which validation score picks best.keras and stops early; None: val_accuracy (val_loss
    # for --regression)
    validation_split: float = 0.1
    regression: bool = False  # targets are numbers (class folder names), fitted with squared error
    cache: str = None  # token ids: None (auto: IMDB in memory, your folders re-read each epoch), "memory", "none", DIR
    init_from: str = None  # a language model (run folder, exported model or its name): start embedding and RNN from it
    freeze_epochs: int = 0  # --init-from: the started layers stay as they are for this many epochs (the head learns)
    pretrained_rate: float = 1.0  # --init-from: the started layers learn at this fraction of the learning rate

    RESUMABLE = settings.RunConfig.RESUMABLE + ("cache",)  # where token ids are kept, not which
    # Options added after the first runs were written, as those runs trained: off (the defaults of that time).
    ABSENT = {"bigram_buckets": 0, "word_dropout": 0.0, "crop": 0.0, "monitor": "val_loss", "init_from": None,
              "freeze_epochs": 0, "pretrained_rate": 1.0, "naive_bayes": False,
              "bigram_hash": "vocabulary"}

    def validate(self):
        super().validate()
        if self.dataset is not None:
            if not tfds_data.is_tfds(self.dataset):
                raise ValueError(f"dataset must be tfds:NAME, or left out for IMDB or --data-dir class folders. "
                                 f"Received: dataset={self.dataset!r}")
            tfds_data.check_name(self.dataset)
        settings.choice(self, "cell", settings.CELLS)
        settings.choice(self, "pooling", POOLINGS)
        settings.choice(self, "activation", settings.ACTIVATIONS)
        settings.choice(self, "recurrent_init", settings.RECURRENT_INITS)
        if self.monitor is not None:
            settings.choice(self, "monitor", MONITORS)
        settings.positive(self, "units", "embedding_dim", "max_length")
        if self.naive_bayes and self.init_from is not None:
            raise ValueError("naive_bayes reads no word vectors: a language model (init_from) has nothing to give it")
        if self.naive_bayes and (self.num_layers != 0 or self.regression):
            raise ValueError("naive_bayes (NBSVM) is a linear model of two classes: use it with num_layers=0 "
                             "(--layers 0), without --regression")
        settings.at_least(self, "num_layers", 0)
        if self.num_layers == 0 and self.pooling == "last":
            raise ValueError("num_layers=0 (a bag of words, no recurrent layer) has no last state: use --pooling "
                             "mean, max or mean_max")
        settings.at_least(self, "vocabulary_size", 3)  # padding, unknown and one word
        settings.at_least(self, "bigram_buckets", 0)
        settings.choice(self, "bigram_hash", settings.BIGRAM_HASHES)
        if self.bigram_buckets and self.vocabulary_size > settings.MAX_BIGRAM_VOCABULARY:
            raise ValueError(f"vocabulary_size must be at most {settings.MAX_BIGRAM_VOCABULARY} with bigram_buckets "
                             f"(pairs of word ids are int32). Received: vocabulary_size={self.vocabulary_size!r}")
        settings.at_least(self, "l2", 0)
        settings.fraction(self, "dropout", "word_dropout", "crop")
        settings.fraction(self, "validation_split", open_zero=True)
        settings.cache_location(self)
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()):
            raise ValueError(f"init_from must name a language model. Received: init_from={self.init_from!r}")
        settings.at_least(self, "freeze_epochs", 0)
        settings.positive(self, "pretrained_rate")
        if self.init_from is None and (self.freeze_epochs or self.pretrained_rate != 1.0):
            raise ValueError("freeze_epochs and pretrained_rate apply to layers started from a language model: "
                             "give init_from too")
        if self.regression and self.monitor not in (None, "val_loss"):
            raise ValueError(f"--monitor {self.monitor} needs classes; use val_loss for --regression")

    def unused_settings(self):
        return () if self.bigram_buckets else ("bigram_hash",)  # no pairs, nothing hashed

    def model_settings(self):
        return {k: getattr(self, k) for k in ("cell", "units", "embedding_dim", "num_layers", "bidirectional",
                                               "pooling", "activation", "recurrent_init", "dropout", "l2",
                                               "bigram_buckets", "bigram_hash", "naive_bayes")}


def load_splits(config):
    """The data of a run: IMDB (or the user's class folders, or a tfds set) as unbatched (text, label) datasets."""
    from toolkit.data import imdb, text_folders

    if config.dataset is not None:
        return tfds_data.text_splits(config.dataset, config.data_dir, config.validation_split, config.seed)
    root = imdb.find_root(config.data_dir)
    class_names = imdb.CLASS_NAMES if imdb.is_imdb(root) else None  # IMDB's unsup/ is no class
    return text_folders.load_text_folders(root, class_names, validation_split=config.validation_split,
                                          seed=config.seed)


def fingerprint(config, class_names):
    """The training files (name and size of each, per class), or a tfds set's name, version and split sizes
    (`tfds_data.fingerprint`): what a resumed run must find again."""
    from toolkit.data import imdb
    from toolkit.training import data_fingerprint

    if config.dataset is not None:
        return tfds_data.fingerprint(config.dataset, config.data_dir)
    train = Path(imdb.find_root(config.data_dir)) / "train"
    return data_fingerprint(sorted(f"{name}/{p.name}:{p.stat().st_size}"
                                   for name in class_names for p in (train / name).glob("*.txt")))


def token_caches(config, data, preprocessor, stack, run):
    """{"train", "validation"}: where `Dataset.cache` keeps each split's token ids ("" in memory, or a file
    prefix), or None to read and tokenise the files again every epoch.

    `config.cache` None is IMDB's (or a tfds set's) token ids in memory (about 80 MB for IMDB) and a
    folder of your own read again each epoch, so memory does not grow with it. A folder DIR keeps
    `DIR/text-SPLIT-KEY*`, KEY naming the data's fingerprint, the vocabulary and the split, so a
    stale cache is never read; its writing is guarded by `disk_cache`, entered on `stack`.
    """
    import hashlib

    from toolkit.data import imdb
    from toolkit.data.pipelines import disk_cache

    cache = config.cache
    if cache is None:
        cache = "memory" if config.dataset is not None or imdb.is_imdb(imdb.find_root(config.data_dir)) else "none"
    if cache == "none":
        return {"train": None, "validation": None}
    if cache == "memory":
        return {"train": "", "validation": ""}
    facts = [data["sha256"], str(config.max_length), str(config.validation_split), str(config.seed),
             *preprocessor.vocabulary]
    key = hashlib.sha256("\n".join(facts).encode("utf-8")).hexdigest()[:16]
    folder = run.cache_folder(Path(cache))
    folder.mkdir(parents=True, exist_ok=True)
    prefixes = {split: folder / f"text-{split}-{key}" for split in ("train", "validation")}
    stack.enter_context(disk_cache(prefixes.values(), f"--cache {folder} is being written by another training run "
                                                      "right now; wait for it, or give another --cache folder"))
    return {split: str(prefix) for split, prefix in prefixes.items()}


def _task(config, class_names):
    if config.regression:
        return "regression"
    return "binary" if len(class_names) == 2 else "multiclass"


def _targets(task, class_names):
    """Maps integer class labels to the targets the loss expects."""
    import tensorflow as tf

    if task == "regression":
        try:
            values = tf.constant([float(name) for name in class_names])
        except ValueError:
            raise ToolkitError(f"--regression needs numeric class folder names. Received: {list(class_names)}") from None
        return lambda y: tf.gather(values, y)
    if task == "binary":
        return lambda y: tf.cast(y, "float32")
    return lambda y: y


def drop_words(ids, rate):
    """Removes each token with probability `rate` (keeping at least one): a regulariser that
    stops the model from leaning on any single word, applied afresh every epoch."""
    import tensorflow as tf

    keep = tf.random.uniform(tf.shape(ids)) >= rate
    keep = tf.tensor_scatter_nd_update(keep, [[0]], [True]) if ids.shape.rank == 1 else keep
    return tf.boolean_mask(ids, keep)


def random_crop(ids, rate, shortest=CROP_SHORTEST):
    """With probability `rate`, a random run of the review's ids, of a length drawn log-uniformly between `shortest`
    and all of them (so one-line lengths are as common as long ones); else the ids unchanged. Trains a model
    that also reads one-line reviews, whose words are few and whose sentiment is in all of them."""
    import tensorflow as tf

    n = tf.shape(ids)[0]

    def crop():
        low = tf.minimum(shortest, n)
        log_low, log_n = tf.math.log(tf.cast(low, tf.float32)), tf.math.log(tf.cast(n, tf.float32))
        length = tf.cast(tf.round(tf.exp(tf.random.uniform([], log_low, log_n + 1e-6))), tf.int32)
        length = tf.clip_by_value(length, low, n)
        start = tf.random.uniform([], 0, n - length + 1, dtype=tf.int32)
        return ids[start:start + length]

    return tf.cond(tf.random.uniform([]) < rate, crop, lambda: ids)


def train(config, run_dir):
    """Trains a text classifier in `run_dir` (resuming it if interrupted) and scores it on the test split.

    Returns the metrics written to `run_dir/metrics.json`.
    """
    import contextlib

    import tensorflow as tf

    from toolkit.data.pipelines import bucketed_batches
    from toolkit.models.text_classifier import build_text_classifier, loss_and_metrics, set_naive_bayes_ratios
    from toolkit.preprocessing.text import TextPreprocessor
    from toolkit.training import Run

    config.validate()  # before a language model is read for --init-from
    start = None
    if config.init_from is not None:
        from toolkit import pretraining

        start = pretraining.read_start(config.init_from)
        config = pretraining.configure(config, start, TrainConfig())

    with Run(run_dir, KIND, config) as run, contextlib.ExitStack() as stack:
        splits = load_splits(config)
        task = _task(config, splits.class_names)
        if config.naive_bayes and task != "binary":  # before anything is written to the run folder
            raise ToolkitError(f"--naive-bayes needs two classes; the data has {len(splits.class_names)}: "
                               f"{', '.join(splits.class_names)}")
        target = _targets(task, splits.class_names)
        data = fingerprint(config, splits.class_names)
        run.write_config(task=task, class_names=list(splits.class_names), data=data)

        if (run.run_dir / TextPreprocessor.CONFIG_FILE).exists():
            preprocessor = TextPreprocessor.load(run.run_dir)
        elif start is not None:  # the language model's vocabulary: its embedding rows are these words
            preprocessor = TextPreprocessor(len(start.vocabulary), config.max_length, vocabulary=start.vocabulary[2:])
            preprocessor.save(run.run_dir)
        else:
            print("Building the vocabulary from the training split...", file=sys.stderr)
            preprocessor = TextPreprocessor(config.vocabulary_size, config.max_length)
            preprocessor.adapt(splits.train.map(lambda text, label: text))
            preprocessor.save(run.run_dir)
        caches = token_caches(config, data, preprocessor, stack, run)

        def batches(dataset, training, cache=None):
            dataset = dataset.map(lambda text, label: (preprocessor.encode_one(text), target(label)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
            if cache is not None:
                dataset = dataset.cache(cache)
            if training and config.crop:
                dataset = dataset.map(lambda ids, y: (random_crop(ids, config.crop), y),
                                      num_parallel_calls=tf.data.AUTOTUNE)
            if training and config.word_dropout:
                dataset = dataset.map(lambda ids, y: (drop_words(ids, config.word_dropout), y),
                                      num_parallel_calls=tf.data.AUTOTUNE)
            return bucketed_batches(dataset, config.batch_size, shuffle=training, seed=config.seed)

        train_batches = batches(splits.train, True, caches["train"])
        validation_batches = batches(splits.validation, False, caches["validation"])
        model = build_text_classifier(len(preprocessor.vocabulary), task=task, num_classes=len(splits.class_names),
                                      **config.model_settings())
        rates, steps = {}, None
        if config.naive_bayes:
            counted = set_naive_bayes_ratios(model, batches(splits.train, False, caches["train"]))
            print(f"Naive Bayes: counted {counted:,} (text, n-gram) pairs of the training split.", file=sys.stderr)
        if start is not None:  # a resumed run's checkpoint replaces these weights (and its optimiser these rates)
            copied = pretraining.transfer(start, model)
            print(f"Started {', '.join(copied)} from the language model in {start.source}.", file=sys.stderr)
            if config.freeze_epochs:  # counted once: the schedule takes the same count
                steps = int(train_batches.reduce(0, lambda n, _: n + 1))
            rates = {"pretrained": copied, "pretrained_rate": config.pretrained_rate,
                     "frozen_steps": config.freeze_epochs * (steps or 0)}
        loss, metrics = loss_and_metrics(task)
        optimizer = run.optimizer(train=train_batches, steps_per_epoch=steps, **rates)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        monitor = config.monitor or ("val_loss" if config.regression else "val_accuracy")
        mode = "min" if monitor.endswith("loss") else "max"
        model, results = run.fit(model, train_batches, validation_batches, monitor=monitor, mode=mode)

        results = {"task": task, "class_names": list(splits.class_names), **results}
        if splits.test is not None:
            start = time.monotonic()
            scores = model.evaluate(batches(splits.test, False), return_dict=True, verbose=0)
            results["test"] = {k: float(v) for k, v in scores.items()}
            results["test_examples"] = int(splits.test.cardinality())
            results["test_seconds"] = round(time.monotonic() - start, 1)
        return run.finish(results)


def text_classifier_archive(members, class_names, task):
    """`serving_default`: a batch of raw strings -> `{"label", "probability"}` (or `{"value"}` for regression).

    `members` is a list of (model, preprocessor) pairs; with several, their outputs (probabilities,
    or values) are averaged: an ensemble of independently trained models. `probability` is the
    model's probability of the returned label.
    """
    import keras
    import tensorflow as tf

    # Variables are tracked through the endpoints that use them; tracking the models as well
    # would store every weight twice. The vectorizers' lookup tables are tracked explicitly.
    archive = keras.export.ExportArchive()
    for _, preprocessor in members:
        archive.track(preprocessor.vectorizer)
    names = tf.constant(list(class_names), dtype=tf.string)

    def serve(text):
        outputs = tf.add_n([model(preprocessor(text), training=False) for model, preprocessor in members])
        outputs = outputs / len(members)
        if task == "regression":
            return {"value": outputs[:, 0]}
        if task == "binary":
            p = outputs[:, 0]
            positive = p >= 0.5
            return {"label": tf.gather(names, tf.cast(positive, tf.int32)),
                    "probability": tf.where(positive, p, 1.0 - p)}
        return {"label": tf.gather(names, tf.argmax(outputs, axis=-1)),
                "probability": tf.reduce_max(outputs, axis=-1)}

    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")])
    return archive


def exported(run_dirs):
    """([(model, preprocessor)] of the runs' best models, the export metadata): what both export forms read."""
    import toolkit.models.text_classifier  # noqa: F401  (registers the custom layers for loading)
    from toolkit import training
    from toolkit.preprocessing.text import TextPreprocessor

    run_dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(r) for r in run_dirs]
    members, configs = [], []
    for run_dir in run_dirs:
        config = training.read_run(run_dir, KIND)
        if configs and (config["task"], config["class_names"]) != (configs[0]["task"], configs[0]["class_names"]):
            raise ToolkitError(f"{run_dir} has other classes or another task than {run_dirs[0]}: "
                               "an ensemble's members must answer the same question")
        members.append((training.load_best(run_dir),
                        TextPreprocessor.load(run_dir)))
        configs.append(config)
    first = configs[0]
    metadata = {"kind": KIND, "task": first["task"], "class_names": first["class_names"],
                "parameters": sum(model.count_params() for model, _ in members)}
    if len(members) == 1:
        metadata.update(train=first["train"], metrics=first["metrics"])
    else:
        metadata["ensemble"] = [{"run": str(run_dir), "train": c["train"], "metrics": c["metrics"]}
                                for run_dir, c in zip(run_dirs, configs)]
    return members, metadata


def export_run(run_dirs, to, name, version):
    """Exports the best model of a run (or, given several runs, the average of theirs) as `TO/NAME/VERSION`,
    with its LiteRT form."""
    from toolkit import export
    from toolkit.lite.convert import form_or_note

    members, metadata = exported(run_dirs)
    archive = text_classifier_archive(members, metadata["class_names"], metadata["task"])
    warmup = [("serving_default", {"text": ["A wonderful film.", "Dull and far too long."]})]
    return export.write_saved_model(archive, to, name, version, metadata, warmup=warmup,
                                    litert=form_or_note(lambda: lite_form(members, metadata)))


def litert_form(run_dirs):
    """The LiteRT form: each member's token ids `token_ids_1`, ... -> `outputs`, the members' mean output (the
    recurrent layers as while loops: `toolkit.lite.recurrent`). Tokenising stays in Python
    (`toolkit.preprocessing.tokens`, the graph's rules), so each member's vocabulary is written beside it."""
    return lite_form(*exported(run_dirs))


def lite_form(members, metadata):
    """`litert_form` of what `exported` read from the runs."""
    import tensorflow as tf

    from toolkit.lite.convert import LiteForm, to_litert
    from toolkit.lite.recurrent import classifier_function

    models = [model for model, _ in members]
    inputs, files = [], {}
    for i, (_, preprocessor) in enumerate(members, start=1):
        inputs.append({"name": f"token_ids_{i}", "vocabulary": f"vocabulary_{i}.txt",
                       "max_length": preprocessor.max_length})
        files[f"vocabulary_{i}.txt"] = "\n".join(preprocessor.vocabulary) + "\n"
    signature = [tf.TensorSpec([None, None], tf.int32, name=spec["name"]) for spec in inputs]
    flatbuffer = to_litert(classifier_function(models), signature, track=models)
    return LiteForm(flatbuffer, {"inputs": inputs, "output": "outputs", "task": metadata["task"]}, files, metadata)


def evaluate(model_path, data_dir=None, batch_size=64, confusion_png=None, on_progress=None, dataset=None,
             runtime="auto", first_sentence=False):
    """Accuracy of an exported model on the test split of IMDB (or of the class folders in `data_dir`).

    `dataset` "tfds:NAME" scores the split a run on it scores instead (`tfds_data.scored_texts`:
    "test", else "validation", named in the report's `split`), `data_dir` being tfds' data_dir.
    `confusion_png`: a path for a figure of the confusion matrix (a regression model has none:
    a note says so). `on_progress(n, total)` is called as each chunk of n of the total reviews
    is scored (a command's progress bar). `runtime`: which answers (`toolkit.lite.choose_runtime`), named in
    the report. `first_sentence`: score each text's first sentence alone (`toolkit.preprocessing.tokens.
    first_sentence`): how the model does on one-line reviews; the report gives their mean length in words.
    """
    from toolkit.data import imdb, text_folders
    from toolkit.lite import predictor
    from toolkit.metrics import classification_report
    from toolkit.plots import plot_confusion_matrix

    classifier = predictor(model_path, runtime, TextClassifier, LiteTextClassifier)
    class_names = classifier.class_names
    facts = {}  # a tfds set's report also names the split scored
    if dataset is not None:
        if not tfds_data.is_tfds(dataset):
            raise ValueError(f"dataset must be tfds:NAME, or None for IMDB or class folders. "
                             f"Received: dataset={dataset!r}")
        tfds_data.check_name(dataset)
        facts["split"], (texts, indices) = tfds_data.scored_texts(dataset, data_dir, class_names)
        labels = [class_names[i] for i in indices]
    else:
        test_dir = Path(imdb.find_root(data_dir)) / "test"
        text_folders.class_folders(test_dir, class_names)
        texts, labels = [], []
        for name in class_names:
            for path in sorted((test_dir / name).glob("*.txt")):
                texts.append(path.read_bytes().decode("utf-8", errors="replace"))
                labels.append(name)
    if first_sentence:
        from toolkit.preprocessing.tokens import first_sentence as cut, words

        texts = [cut(text) for text in texts]
        facts["first_sentence"] = True
        facts["mean_words"] = round(sum(len(words(text)) for text in texts) / max(len(texts), 1), 1)
    start = time.monotonic()
    predictions = [None] * len(texts)
    if on_progress:
        on_progress(0, len(texts))
    # Chunks of whole batches in length order: `predict` batches each chunk exactly as it would all the texts.
    for chunk in in_length_order(texts, batch_size * 16):
        for i, prediction in zip(chunk, classifier.predict([texts[i] for i in chunk], batch_size=batch_size)):
            predictions[i] = prediction
        if on_progress:
            on_progress(len(chunk), len(texts))
    seconds = time.monotonic() - start
    if classifier.metadata.get("task") == "regression":
        errors = [abs(p["value"] - float(label)) for p, label in zip(predictions, labels)]
        report = {"mae": sum(errors) / len(errors), "rmse": (sum(e * e for e in errors) / len(errors)) ** 0.5}
    else:
        report = classification_report(labels, [p["label"] for p in predictions], class_names)
    report.update(model=str(classifier.model_dir), runtime=classifier.runtime, **facts, examples=len(texts),
                  seconds=round(seconds, 1),
                  examples_per_second=round(len(texts) / seconds, 1))
    if confusion_png and "confusion_matrix" not in report:
        print(f"Note: a regression model has no confusion matrix; {confusion_png} was not written", file=sys.stderr)
    elif confusion_png:
        plot_confusion_matrix(report["confusion_matrix"], report["class_names"], confusion_png)
        report["confusion_png"] = str(confusion_png)
    return report


class TextClassifier(Predictor):
    """An exported text classifier: strings in, `{"label", "probability"}` (or `{"value"}`) out."""

    kind = KIND
    metadata_fields = {"class_names": strings}

    def __init__(self, path):
        super().__init__(path)
        self.serve = self.signatures["serving_default"]
        self.class_names = self.metadata["class_names"]

    def predict(self, texts, batch_size=64):
        """`{"label", "probability"}` (regression models: `{"value"}`) per text (a string counts as a list
        of one), in the order given; texts of similar length are batched together for speed."""
        import tensorflow as tf

        texts, batch_size = texts_of(texts), batch_size_of(batch_size)
        results = [None] * len(texts)
        for chunk in in_length_order(texts, batch_size):
            outputs = self.serve(text=tf.constant([texts[i] for i in chunk], dtype=tf.string))
            outputs = {k: v.numpy() for k, v in outputs.items()}
            for row, i in enumerate(chunk):
                results[i] = {k: plain(v[row]) for k, v in outputs.items()}
        return results


class LiteTextClassifier(LitePredictor):
    """`TextClassifier` through the model's LiteRT form: each member's token ids made in Python by the graph's
    rules (`toolkit.preprocessing.tokens`), its label and probability computed as the graph computes them."""

    kind = KIND
    metadata_fields = TextClassifier.metadata_fields

    def __init__(self, path):
        from toolkit.preprocessing.tokens import Vocabulary

        super().__init__(path)
        self.class_names = self.metadata["class_names"]
        self.task = self.metadata.get("task", "binary")
        try:
            self.members = [(spec["name"], Vocabulary.read(self.lite_dir / Path(spec["vocabulary"]).name),
                             int(spec["max_length"])) for spec in self.config["inputs"]]
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise ToolkitError(f"broken LiteRT model description in {self.lite_dir}: {e}") from None
        self.check_inputs([name for name, _, _ in self.members])

    def predict(self, texts, batch_size=64):
        """`TextClassifier.predict`."""
        from toolkit.preprocessing.tokens import padded

        texts, batch_size = texts_of(texts), batch_size_of(batch_size)
        results = [None] * len(texts)
        for chunk in in_length_order(texts, batch_size):
            inputs = {name: padded([vocabulary.ids(texts[i], max_length) for i in chunk])
                      for name, vocabulary, max_length in self.members}
            for i, answer in zip(chunk, self.answers(self.model(**inputs)["outputs"])):
                results[i] = answer
        return results

    def answers(self, outputs):
        """The graph's answers (`text_classifier_archive`) from the members' mean output, in float32 as there."""
        import numpy as np

        outputs = np.asarray(outputs, np.float32)
        if self.task == "regression":
            return [{"value": plain(v)} for v in outputs[:, 0]]
        if self.task == "binary":
            p = outputs[:, 0]
            positive = p >= np.float32(0.5)
            labels, probabilities = positive.astype(int), np.where(positive, p, np.float32(1.0) - p)
        else:
            labels, probabilities = outputs.argmax(axis=-1), outputs.max(axis=-1)
        return [{"label": self.class_names[label], "probability": plain(probability)}
                for label, probability in zip(labels, probabilities)]


PREDICTOR = TextClassifier
LITE_PREDICTOR = LiteTextClassifier
