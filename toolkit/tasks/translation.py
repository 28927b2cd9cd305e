"""Translation end to end: sentence pairs -> encoder-decoder with attention -> SavedModel -> `Translator`.

`train()` is what `toolkit train translation` runs, `export_run()` writes the serving model
(tokenisers, encoder, decoder and beam search in one graph), `evaluate()` scores an
exported model with sacreBLEU on detokenised text, `Translator` answers with one.
"""

import dataclasses
import sys
import time
from pathlib import Path

from toolkit import config as settings
from toolkit.data.parallel_text import MULTI30K_LANGUAGES
from toolkit.errors import ToolkitError
from toolkit.serving import (
    Predictor,
    batch_size_of,
    in_length_order,
    number,
    positive_integer,
    search_inputs,
    search_settings,
    texts_of,
)

KIND = "translator"
COMMAND = "translation"
SHIPPED_MODEL = "translator_en_de"
# Why `toolkit export --format litert` refuses them:
NO_LITERT = "their search loops do not convert to LiteRT builtin ops"
ENSEMBLES = True  # `toolkit export RUN RUN ...` averages the members' next-token probabilities
TOKENIZERS = ("sentencepiece", "words")
ATTENTIONS = ("luong", "bahdanau")
BUCKETS = (8, 12, 16, 20, 24, 28, 32, 40, 48, 64, 96, 128)
# Output length limit: ratio * source tokens + offset, at most cap (so no input can run forever).
LENGTH_RATIO, LENGTH_OFFSET, LENGTH_CAP = 1.5, 10, 256


@dataclasses.dataclass(frozen=True)
class TrainConfig(settings.RunConfig):
    """Everything that decides a translation run; stored as the run's config.json."""

    data_dir: str = None  # Multi30k: None = $TOOLKIT_DATA_DIR/multi30k, else download
    pairs: str = None  # or a tab-separated file of pairs (then validation is held out of it)
    source_language: str = "en"
    target_language: str = "de"
    tokenizer: str = "sentencepiece"  # or "words"
    vocabulary_size: int = 8000  # per language
    cell: str = "gru"
    units: int = 256
    embedding_dim: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 2
    bidirectional: bool = True
    attention: str = "luong"  # or "bahdanau"
    dropout: float = 0.3
    label_smoothing: float = 0.1
    max_length: int = 100  # training pairs with more tokens on either side are left out
    clip_norm: float = 1.0
    batch_size: int = 64
    epochs: int = 20
    patience: int = 3
    validation_split: float = 0.05  # --pairs only: Multi30k has its own validation split
    beam_size: int = 5  # the exported model's default search
    length_penalty: float = 1.0
    init_from: str = None  # a translation run folder: start from its best model (weights and tokenisers)

    RESUMABLE = settings.RunConfig.RESUMABLE + ("beam_size", "length_penalty")

    def validate(self):
        super().validate()
        if not self.pairs:
            settings.choice(self, "source_language", MULTI30K_LANGUAGES)
            settings.choice(self, "target_language", MULTI30K_LANGUAGES)
            if self.source_language == self.target_language:
                raise ValueError(f"source and target must differ. Received: {self.source_language!r} twice")
        settings.choice(self, "tokenizer", TOKENIZERS)
        settings.choice(self, "cell", settings.CELLS)
        settings.choice(self, "attention", ATTENTIONS)
        settings.positive(self, "units", "embedding_dim", "encoder_layers", "decoder_layers", "max_length",
                          "beam_size")
        settings.at_least(self, "vocabulary_size", 8)
        settings.at_least(self, "length_penalty", 0)
        settings.fraction(self, "dropout", "label_smoothing")
        settings.fraction(self, "validation_split", open_zero=True)
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from.strip()):
            raise ValueError(f"init_from must name a translation run folder. Received: init_from={self.init_from!r}")

    def model_settings(self):
        return {k: getattr(self, k) for k in ("cell", "units", "embedding_dim", "encoder_layers", "decoder_layers",
                                               "bidirectional", "attention", "dropout")}


# What a run started from another (--init-from) takes from it: the tokenisers' and layers' shapes.
ARCHITECTURE = ("tokenizer", "vocabulary_size", "cell", "units", "embedding_dim", "encoder_layers", "decoder_layers",
                "bidirectional", "attention")


def warm_start(config):
    """(`config` with the architecture of the run it starts from, that run's folder): `--init-from`.

    A translator trained on goes on from another run's best model, with its tokenisers: to train
    longer with a new schedule (annealing the rate of a run trained at a constant one), or on
    pairs of your own (fine-tuning to a domain). A setting changed from its default to something
    else than the start's is refused, naming both.
    """
    from toolkit.training import read_run

    start_dir = Path(config.init_from)
    theirs = read_run(start_dir, KIND)["train"]
    defaults, changes = TrainConfig(), {}
    for name in ARCHITECTURE:
        ours = getattr(config, name)
        if ours != getattr(defaults, name) and ours != theirs[name]:
            raise ValueError(f"{name}={ours!r} differs from {theirs[name]!r} in {start_dir}: a run started from it "
                             f"(--init-from) takes its tokenisers and layers; leave --{name.replace('_', '-')} out")
        changes[name] = theirs[name]
    return dataclasses.replace(config, **changes), start_dir


def load_splits(config):
    """(train, validation, test or None) `Pairs` of a run."""
    from toolkit.data import parallel_text

    if config.pairs:
        pairs = parallel_text.read_pairs(config.pairs)
        train, validation = parallel_text.split_pairs(pairs, config.validation_split, config.seed)
        return train, validation, None
    src, tgt = config.source_language, config.target_language
    return tuple(parallel_text.multi30k_split(split, src, tgt, config.data_dir)
                 for split in ("train", "val", "test_2016_flickr"))


def make_batches(pairs, source_tokenizer, target_tokenizer, batch_size, *, training=False, max_length=None, seed=None):
    """`((source_ids, target_in), target_out, weights)` batches, bucketed by length.

    The source ends with the end token; the decoder reads `<s> y1 .. yn` and must predict
    `y1 .. yn </s>`; weights are 0 on padding, so padded steps add nothing to the loss.
    """
    import tensorflow as tf

    from toolkit.data.pipelines import bucketed_batches
    from toolkit.preprocessing.sequences import BOS, EOS

    def encode(source, target):
        src = tf.concat([source_tokenizer.encode(source[None])[0], [EOS]], 0)
        tgt = target_tokenizer.encode(target[None])[0]
        return src, tf.concat([[BOS], tgt], 0), tf.concat([tgt, [EOS]], 0)

    dataset = tf.data.Dataset.from_tensor_slices((list(pairs.source), list(pairs.target)))
    dataset = dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    if max_length:
        dataset = dataset.filter(lambda s, ti, to: (tf.shape(s)[0] <= max_length + 1) & (tf.shape(to)[0] <= max_length + 1))
    dataset = dataset.cache()
    dataset = bucketed_batches(dataset, batch_size, shuffle=training, seed=seed, boundaries=BUCKETS,
                               length=lambda s, ti, to: tf.maximum(tf.shape(s)[0], tf.shape(to)[0]))
    return dataset.map(lambda s, ti, to: ((s, ti), to, tf.cast(to != 0, tf.float32)))


def train(config, run_dir):
    """Trains a translator in `run_dir` (resuming it if interrupted) and scores it on the test split."""
    from toolkit.models.translator import build_translator
    from toolkit.preprocessing.sequences import load_tokenizer, make_tokenizer
    from toolkit.training import Run, compile_sequence_model, data_fingerprint, load_best

    start_dir = None
    if config.init_from is not None:
        config, start_dir = warm_start(config)

    with Run(run_dir, KIND, config) as run:
        train_pairs, validation_pairs, test_pairs = load_splits(config)
        run.write_config(source_language=_language(config, "source"), target_language=_language(config, "target"),
                         data=data_fingerprint(train_pairs.source, train_pairs.target))

        if (run.run_dir / "target_tokenizer.json").exists():
            source_tokenizer, target_tokenizer = load_tokenizer(run.run_dir, "source"), load_tokenizer(run.run_dir, "target")
        elif start_dir is not None:
            source_tokenizer, target_tokenizer = load_tokenizer(start_dir, "source"), load_tokenizer(start_dir, "target")
            run.run_dir.mkdir(parents=True, exist_ok=True)
            source_tokenizer.save(run.run_dir, "source")
            target_tokenizer.save(run.run_dir, "target")
        else:
            print(f"Building {config.tokenizer} vocabularies from {len(train_pairs)} training pairs...", file=sys.stderr)
            source_tokenizer = make_tokenizer(config.tokenizer, train_pairs.source, config.vocabulary_size)
            target_tokenizer = make_tokenizer(config.tokenizer, train_pairs.target, config.vocabulary_size)
            run.run_dir.mkdir(parents=True, exist_ok=True)
            source_tokenizer.save(run.run_dir, "source")
            target_tokenizer.save(run.run_dir, "target")

        train_batches = make_batches(train_pairs, source_tokenizer, target_tokenizer, config.batch_size, training=True,
                                     max_length=config.max_length, seed=config.seed)
        validation_batches = make_batches(validation_pairs, source_tokenizer, target_tokenizer, config.batch_size)
        model = build_translator(source_tokenizer.vocabulary_size, target_tokenizer.vocabulary_size,
                                 **config.model_settings())
        if start_dir is not None:  # a resumed run's checkpoint then replaces these weights
            model.set_weights(load_best(start_dir).get_weights())
        compile_sequence_model(model, run.optimizer(train=train_batches), config.label_smoothing)
        model, results = run.fit(model, train_batches, validation_batches)
        translator = TranslationGraph(model, source_tokenizer, target_tokenizer)
        for name, pairs in (("validation", validation_pairs), ("test", test_pairs)):
            if pairs is not None:
                results[name] = score(translator, pairs, beam_size=config.beam_size, length_penalty=config.length_penalty)
        return run.finish(results)


def _language(config, side):
    if config.pairs:
        return None
    return config.source_language if side == "source" else config.target_language


class TranslationGraph:
    """Source strings -> translations, as TensorFlow ops: tokenise, encode, search, detokenise.

    The same object answers while training (scores on validation and test) and is what the
    export wraps, so the shipped graph is the one that was scored. Given several models (an
    ensemble trained with the same tokenisers), each search step averages their next-token
    probabilities.
    """

    def __init__(self, models, source_tokenizer, target_tokenizer):
        from toolkit.models.decoder import AttentionDecoder
        from toolkit.models.translator import encoder

        models = models if isinstance(models, (list, tuple)) else [models]
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.encoders = [encoder(model) for model in models]
        self.decoders = [AttentionDecoder.from_model(model) for model in models]

    def trackables(self):
        return self.source_tokenizer.trackables() + self.target_tokenizer.trackables()

    def translate(self, text, beam_size, length_penalty, alignments=False):
        """`text [batch]` -> `{"translation": [batch] strings, "score": [batch] floats}`.

        `beam_size` and `length_penalty`: one for the batch or one per row. With `alignments`,
        also the attention of every target token over the source tokens (averaged over an
        ensemble's members): `attention [batch, target, source]`, `source_tokens` and
        `target_tokens` (the pieces the model read and wrote, "" past a row's end).
        """
        import tensorflow as tf

        from toolkit.decoding import beam_search
        from toolkit.preprocessing.sequences import BOS, EOS, PAD, UNK

        ids = self.source_tokenizer.encode(text)[:, : LENGTH_CAP - 1]
        source_lengths = tf.cast(ids.row_lengths(), tf.int32)
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(tf.fill([tf.shape(text)[0], 1], EOS))], axis=1)
        source = ids.to_tensor(PAD)
        source_mask = tf.not_equal(source, PAD)
        states, context = [], []
        for encoder, decoder in zip(self.encoders, self.decoders):
            memory, *bridges = encoder(source, training=False)
            states.append(decoder.group_states(bridges))
            context.append((memory, source_mask))
        limits = tf.cast(tf.math.ceil(LENGTH_RATIO * tf.cast(source_lengths, tf.float32)), tf.int32) + LENGTH_OFFSET
        limits = tf.minimum(limits, LENGTH_CAP)

        def step(tokens, states, context):
            outputs = [decoder.step(tokens, s, *c, with_attention=alignments)
                       for decoder, s, c in zip(self.decoders, states, context)]
            log_p = [o[0] for o in outputs]
            if len(log_p) > 1:  # the log of the members' mean probability
                log_p = [tf.reduce_logsumexp(tf.stack(log_p), axis=0) - tf.math.log(float(len(log_p)))]
            new_states = [o[1] for o in outputs]
            if not alignments:
                return log_p[0], new_states
            return log_p[0], new_states, tf.add_n([o[2] for o in outputs]) / float(len(outputs))

        tokens, scores, *attention = beam_search(step, states, context, limits, beam_size=beam_size, bos_id=BOS,
                                                 eos_id=EOS, length_penalty=length_penalty,
                                                 banned_ids=(PAD, UNK, BOS), alignments=alignments)
        translation = self.target_tokenizer.decode(tf.RaggedTensor.from_tensor(tokens, padding=PAD))
        empty = tf.equal(source_lengths, 0)  # nothing to translate: nothing comes back
        outputs = {"translation": tf.where(empty, tf.constant(""), translation),
                   "score": tf.where(empty, tf.zeros_like(scores), scores)}
        if alignments:  # an empty row has no tokens to show either
            written = (tokens != PAD) & ~empty[:, None]
            outputs.update(attention=tf.where(written[:, :, None], attention[0], 0.0),
                           source_tokens=tf.where(source_mask & ~empty[:, None], self.source_tokenizer.pieces(source), ""),
                           target_tokens=tf.where(written, self.target_tokenizer.pieces(tokens), ""))
        return outputs


def translate_all(translate, sentences, batch_size=64):
    """Translations of a list of strings, batched by length, in the order given.

    `translate(text)` returns a signature's outputs; with attention outputs, each answer also
    has `source_tokens`, `target_tokens` and `attention` (a row per target token, a weight per
    source token), cut to the tokens of that sentence.
    """
    import tensorflow as tf

    results = [None] * len(sentences)
    for chunk in in_length_order(sentences, batch_size):
        outputs = {k: v.numpy() for k, v in translate(tf.constant([sentences[i] for i in chunk], tf.string)).items()}
        for row, i in enumerate(chunk):
            results[i] = {"translation": outputs["translation"][row].decode("utf-8"),
                          "score": round(float(outputs["score"][row]), 6)}
            if "attention" in outputs:
                source = [t.decode("utf-8") for t in outputs["source_tokens"][row] if t]
                target = [t.decode("utf-8") for t in outputs["target_tokens"][row] if t]
                weights = outputs["attention"][row][:len(target), :len(source)]
                results[i].update(source_tokens=source, target_tokens=target,
                                  attention=[[round(float(w), 4) for w in line] for line in weights])
    return results


def score(translator, pairs, beam_size, length_penalty, batch_size=64):
    """BLEU and chrF (sacreBLEU) of a `TranslationGraph` on `pairs`."""
    import tensorflow as tf

    from toolkit.metrics import translation_scores

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)  # loops are explicit
    def translate(text):
        return translator.translate(text, beam_size, length_penalty)

    start = time.monotonic()
    hypotheses = [r["translation"] for r in translate_all(translate, pairs.source, batch_size)]
    return {**translation_scores(hypotheses, [[t] for t in pairs.target]), "beam_size": beam_size,
            "length_penalty": length_penalty, "sentences": len(pairs), "seconds": round(time.monotonic() - start, 1)}


def translator_archive(graph, beam_size, length_penalty):
    """Three signatures, answering `{"translation": string, "score": float}` per sentence:

    - `serving_default`: a batch of source sentences (`text`), searched with the run's
      beam size and length penalty;
    - `translate`: the same, with a `beam_size` (1 = greedy) and a `length_penalty` per sentence;
    - `translate_attention`: as `translate`, plus the attention of every target token over the
      source tokens (`attention [batch, target, source]`, `source_tokens`, `target_tokens`):
      what `toolkit translate --attention-map` draws, from the search that chose the words.

    Every input has a leading batch dimension, so TF Serving's REST row format can express
    each request and its batching can merge requests with different settings.
    `graph` is a `translation.TranslationGraph`: tokeniser, encoder, beam search and
    detokeniser in one TensorFlow function, so clients send and receive plain text.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()  # variables are tracked through the endpoints
    for resource in graph.trackables():
        archive.track(resource)

    def serve(text):
        rows = tf.shape(text)[:1]
        return graph.translate(text, tf.fill(rows, beam_size), tf.fill(rows, float(length_penalty)))

    def translate_attention(text, beam_size, length_penalty):
        return graph.translate(text, beam_size, length_penalty, alignments=True)

    text = tf.TensorSpec(shape=(None,), dtype=tf.string, name="text")
    search = [tf.TensorSpec(shape=(None,), dtype=tf.int32, name="beam_size"),
              tf.TensorSpec(shape=(None,), dtype=tf.float32, name="length_penalty")]
    archive.add_endpoint("serving_default", serve, input_signature=[text])
    archive.add_endpoint("translate", graph.translate, input_signature=[text, *search])
    archive.add_endpoint("translate_attention", translate_attention, input_signature=[text, *search])
    return archive


def export_run(run_dirs, to, name, version):
    """Exports the best model of a translation run (or an ensemble of several runs) as `TO/NAME/VERSION`.

    The members of an ensemble must share their tokenisers (the same data and tokeniser
    settings give the same ones: SentencePiece training is deterministic).
    """
    import hashlib

    import toolkit.models.translator  # noqa: F401  (registers the custom layers for loading)
    from toolkit import export, training
    from toolkit.preprocessing.sequences import load_tokenizer

    run_dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(r) for r in run_dirs]
    models, configs, fingerprints = [], [], []
    for run_dir in run_dirs:
        config = training.read_run(run_dir, KIND)
        files = sorted(p for p in run_dir.iterdir() if p.name.startswith(("source", "target")))
        fingerprints.append(hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest())
        if fingerprints[-1] != fingerprints[0]:
            raise ToolkitError(f"{run_dir} has other tokenisers than {run_dirs[0]}: an ensemble's members must "
                               "share them (train them on the same data with the same --tokenizer settings)")
        models.append(training.load_best(run_dir))
        configs.append(config)
    first = configs[0]
    graph = TranslationGraph(models, load_tokenizer(run_dirs[0], "source"), load_tokenizer(run_dirs[0], "target"))
    beam_size, length_penalty = first["train"]["beam_size"], first["train"]["length_penalty"]
    metadata = {"kind": KIND, "source_language": first["source_language"], "target_language": first["target_language"],
                "parameters": sum(model.count_params() for model in models), "beam_size": beam_size,
                "length_penalty": length_penalty,
                "max_output_tokens": f"min({LENGTH_CAP}, {LENGTH_RATIO} * source tokens + {LENGTH_OFFSET})"}
    if len(models) == 1:
        metadata.update(train=first["train"], metrics=first["metrics"])
    else:
        metadata["ensemble"] = [{"run": str(run_dir), "train": c["train"], "metrics": c["metrics"]}
                                for run_dir, c in zip(run_dirs, configs)]
    example = {"text": ["A dog runs on the beach."], "beam_size": [beam_size], "length_penalty": [length_penalty]}
    warmup = [("serving_default", {"text": example["text"]}), ("translate", example), ("translate_attention", example)]
    return export.write_saved_model(translator_archive(graph, beam_size, length_penalty), to, name, version,
                                    metadata, warmup=warmup)


def evaluate(model_path, data_dir=None, split="test_2016_flickr", pairs=None, beam_size=None, length_penalty=None,
             batch_size=64, on_progress=None):
    """sacreBLEU BLEU and chrF of an exported translator on a Multi30k split (or a pair file).

    `on_progress(n, total)` is called as each chunk of n of the total sentences is translated
    (a command's progress bar).
    """
    from toolkit.data import parallel_text
    from toolkit.metrics import translation_scores

    translator = Translator(model_path)
    if pairs:
        data = parallel_text.read_pairs(pairs)
    else:
        source, target = translator.metadata["source_language"], translator.metadata["target_language"]
        if not source or not target:
            raise ToolkitError("this model was trained on a pair file: pass --pairs FILE to evaluate it")
        data = parallel_text.multi30k_split(split, source, target, data_dir)
    start = time.monotonic()
    results = [None] * len(data.source)
    if on_progress:
        on_progress(0, len(data.source))
    # Chunks of whole batches in length order: `translate` batches each chunk exactly as it would all the sentences.
    for chunk in in_length_order(data.source, batch_size * 4):
        answers = translator.translate([data.source[i] for i in chunk], beam_size=beam_size,
                                       length_penalty=length_penalty, batch_size=batch_size)
        for i, answer in zip(chunk, answers):
            results[i] = answer
        if on_progress:
            on_progress(len(chunk), len(data.source))
    seconds = time.monotonic() - start
    report = translation_scores([r["translation"] for r in results], [[t] for t in data.target])
    report.update(model=str(translator.model_dir), split=pairs or split, sentences=len(data),
                  beam_size=beam_size or translator.metadata["beam_size"],
                  length_penalty=translator.metadata["length_penalty"] if length_penalty is None else length_penalty,
                  seconds=round(seconds, 1), sentences_per_second=round(len(data) / max(seconds, 1e-9), 1))
    return report


class Translator(Predictor):
    """An exported translator: source sentences in, `{"translation", "score"}` out."""

    kind = KIND
    op_libraries = ("tensorflow_text",)  # the SentencePiece ops of the tokenisers
    signature_names = ("serving_default", "translate")
    metadata_fields = {"beam_size": positive_integer, "length_penalty": number}

    def translate(self, sentences, beam_size=None, length_penalty=None, batch_size=64, attention=False):
        """`{"translation", "score"}` per sentence (a string counts as a list of one), in the order given.

        `score` is the translation's log-probability per token ** `length_penalty`. `beam_size`
        (1 = greedy) and `length_penalty` default to the model's own. With `attention`, each
        answer also has `source_tokens`, `target_tokens` and `attention`: one row per target
        token of weights over the source tokens, from the search that chose the words.
        """
        sentences, batch_size = texts_of(sentences), batch_size_of(batch_size)
        beam, penalty = search_settings(self.metadata, beam_size, length_penalty)
        signature = self.signature("translate_attention" if attention else "translate")
        return translate_all(lambda text: signature(text=text, **search_inputs(signature, len(text), beam, penalty)),
                             sentences, batch_size)


PREDICTOR = Translator
