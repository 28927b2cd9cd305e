"""Image captioning end to end: images with captions -> CNN encoder + recurrent decoder -> SavedModel.

`train()` is what `toolkit train captions` runs, `export_run()` writes the serving model (image
decoding, encoder, decoder and beam search in one graph), `evaluate()` scores an exported model
with corpus BLEU-1..4 (sacreBLEU) and CIDEr-D (pycocoevalcap) against every reference caption.

A frozen encoder (pretrained) runs once per image before training: its feature maps are cached
under the toolkit cache, keyed by encoder, weights, image size and images, and the decoder trains
on them. An encoder trained end to end (our ResNets) reads the decoded pixels instead.
"""

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

from toolkit import config as settings
from toolkit.atomic import atomic_path
from toolkit.errors import ToolkitError
from toolkit.serving import (
    ImagePredictor,
    answer_images,
    number,
    positive_integer,
    search_inputs,
    search_settings,
)

KIND = "captioner"
COMMAND = "captions"
SHIPPED_MODEL = "captioner"
# Why `toolkit export --format litert` refuses them:
NO_LITERT = "their search loops do not convert to LiteRT builtin ops"
ENSEMBLES = False
ATTENTIONS = ("bahdanau", "luong", "none")
BUCKETS = (8, 10, 12, 14, 16, 20, 24, 32)
MAX_CAPTION_TOKENS = 40  # the most words a generated caption may have (end token included)
ENCODER_WEIGHTS = "encoder.weights.h5"  # a frozen encoder's weights, kept in the run folder for the export


@dataclasses.dataclass(frozen=True)
class TrainConfig(settings.RunConfig):
    """Everything that decides a captioning run; stored as the run's config.json."""

    data_dir: str = None  # Flickr8k, Kaggle or COCO-style layout; None = $TOOLKIT_DATA_DIR/flickr8k, else download
    encoder: str = "efficientnet_lite0"  # see toolkit.models.image_encoders
    encoder_weights: str = None  # the converted EfficientNet-Lite0 file; None = the toolkit cache
    image_size: int = 224
    cell: str = "lstm"
    units: int = 512
    embedding_dim: int = 256
    decoder_layers: int = 1
    attention: str = "bahdanau"  # "luong", or "none" for Show and Tell (the image as initial state only)
    dropout: float = 0.5
    vocabulary_size: int = 10000  # at most; words seen fewer than min_count times are <unk>
    min_count: int = 3
    max_length: int = 40  # training captions with more words are left out
    label_smoothing: float = 0.1
    clip_norm: float = 5.0
    batch_size: int = 64
    epochs: int = 20
    patience: int = 3
    beam_size: int = 3  # the exported model's default search
    length_penalty: float = 1.0

    RESUMABLE = settings.RunConfig.RESUMABLE + ("beam_size", "length_penalty")

    def validate(self):
        from toolkit.models.image_encoders import check_name

        super().validate()
        check_name(self.encoder)
        settings.choice(self, "cell", settings.CELLS)
        settings.choice(self, "attention", ATTENTIONS)
        settings.positive(self, "image_size", "units", "embedding_dim", "decoder_layers", "max_length", "min_count",
                          "beam_size")
        settings.at_least(self, "vocabulary_size", 8)
        settings.at_least(self, "length_penalty", 0)
        settings.fraction(self, "dropout", "label_smoothing")

    def model_settings(self):
        return {"cell": self.cell, "units": self.units, "embedding_dim": self.embedding_dim,
                "decoder_layers": self.decoder_layers, "dropout": self.dropout,
                "attention": None if self.attention == "none" else self.attention}


# === Images -> model inputs ===

def decode_all(captioned, image_size, batch_size=32):
    """Batches of float32 pixels `[n, size, size, 3]` of every image of a split, in order.

    Images are decoded and resized by the same op the exported graph runs on image bytes.
    """
    import tensorflow as tf

    from toolkit.preprocessing.image import decode_image

    dataset = tf.data.Dataset.from_generator(lambda: (captioned.read(name) for name in captioned.names),
                                             output_signature=tf.TensorSpec((), tf.string))
    dataset = dataset.map(lambda b: decode_image(b, (image_size, image_size), 3),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size).prefetch(2)


def image_table(config, split, captioned, encoder=None, on_progress=None):
    """One row per image of `split`: the frozen `encoder`'s feature maps (float16, cached), or uint8 pixels.

    Encoding a split takes minutes: `on_progress(n, total)` is called as each batch of n of the
    total images is encoded; by default a bar is drawn on stderr when it is a terminal.
    """
    import keras
    import numpy as np

    from toolkit.progress import Progress

    if encoder is None:
        batches = decode_all(captioned, config.image_size)
        return np.concatenate([b.numpy().round().astype("uint8") for b in batches])
    path = _feature_cache(config, split, captioned)
    if path.exists():
        return np.load(path)
    print(f"Encoding the {len(captioned)} {split} images with {config.encoder} (cached in {path.parent})...",
          file=sys.stderr)
    start = time.monotonic()
    rows = []
    with Progress("images encoded") as progress:
        advance = on_progress or progress.advance
        for batch in decode_all(captioned, config.image_size):
            # A plain call: under a distribution strategy `predict_on_batch` would gather every replica's copy.
            rows.append(keras.ops.convert_to_numpy(encoder(batch, training=False)).astype("float16"))
            advance(len(rows[-1]), len(captioned))
    table = np.concatenate(rows)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, table)
    print(f"  {len(table) / (time.monotonic() - start):.1f} images/s", file=sys.stderr)
    return table


def _feature_cache(config, split, captioned):
    """`CACHE/features/<encoder key>/<split>-<images key>.npy`: one folder per encoder, weights, size and data."""
    from toolkit.data.locate import cache_dir, local_copy

    weights = config.encoder
    if config.encoder == "efficientnet_lite0":
        from toolkit.models.efficientnet_lite import default_weights_path

        path = Path(config.encoder_weights) if config.encoder_weights else default_weights_path()
        weights = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    source = str(Path(local_copy("flickr8k", config.data_dir) or "download").resolve())
    folder = hashlib.sha256(json.dumps([config.encoder, weights, config.image_size, source]).encode()).hexdigest()
    images = hashlib.sha256(json.dumps(captioned.names).encode()).hexdigest()
    return cache_dir() / "features" / folder[:16] / f"{split}-{images[:12]}.npy"


def make_batches(images, captioned, tokenizer, batch_size, *, training=False, max_length=None, seed=None):
    """`((image rows, caption_in), caption_out, weights)` batches, one element per (image, caption).

    `images[i]` is the model input of image i (features or pixels). The decoder reads
    `<s> w1 .. wn` and must predict `w1 .. wn </s>`; weights are 0 on padding.
    """
    import tensorflow as tf

    from toolkit.data.pipelines import bucketed_batches
    from toolkit.preprocessing.sequences import BOS, EOS, caption_standardize

    index = [i for i, captions in enumerate(captioned.captions) for _ in captions]
    texts = [caption for captions in captioned.captions for caption in captions]
    table = tf.constant(images)

    def encode(i, text):
        ids = tokenizer.encode(caption_standardize(text)[None])[0]
        return i, tf.concat([[BOS], ids], 0), tf.concat([ids, [EOS]], 0)

    dataset = tf.data.Dataset.from_tensor_slices((index, texts)).map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    if max_length:
        dataset = dataset.filter(lambda i, ti, to: tf.shape(to)[0] <= max_length + 1)
    dataset = bucketed_batches(dataset.cache(), batch_size, shuffle=training, seed=seed, boundaries=BUCKETS,
                               length=lambda i, ti, to: tf.shape(to)[0])
    return dataset.map(lambda i, ti, to: ((tf.cast(tf.gather(table, i), tf.float32), ti), to,
                                          tf.cast(to != 0, tf.float32)))


# === Training ===

def train(config, run_dir):
    """Trains a captioner in `run_dir` (resuming it if interrupted) and scores it on the test split."""
    from toolkit.data import captions as caption_data
    from toolkit.models.captioner import build_captioner
    from toolkit.models.image_encoders import build_image_encoder, is_frozen
    from toolkit.preprocessing.sequences import WordTokenizer, caption_standardize, load_tokenizer
    from toolkit.training import Run, compile_sequence_model, data_fingerprint

    with Run(run_dir, KIND, config) as run:
        splits = caption_data.load(config.data_dir, seed=config.seed)
        train = splits["train"]
        run.write_config(images={s: len(c) for s, c in splits.items()},
                         data=data_fingerprint(train.names, ["\n".join(c) for c in train.captions]))

        if (run.run_dir / "caption_tokenizer.json").exists():
            tokenizer = load_tokenizer(run.run_dir, "caption")
        else:
            texts = [c for captions in splits["train"].captions for c in captions]
            texts = [t.decode("utf-8") for t in caption_standardize(texts).numpy()]
            tokenizer = WordTokenizer.train(texts, config.vocabulary_size, min_count=config.min_count)
            print(f"Vocabulary: {tokenizer.vocabulary_size} words from {len(texts)} training captions "
                  f"(seen at least {config.min_count} times).", file=sys.stderr)
            run.run_dir.mkdir(parents=True, exist_ok=True)
            tokenizer.save(run.run_dir, "caption")

        frozen = is_frozen(config.encoder)
        encoder = build_image_encoder(config.encoder, config.image_size, efficientnet_weights=config.encoder_weights)
        if frozen:
            encoder.trainable = False
            if not (run.run_dir / ENCODER_WEIGHTS).exists():
                with atomic_path(run.run_dir / ENCODER_WEIGHTS, suffix=".weights.h5") as tmp:
                    encoder.save_weights(tmp)
        tables = {split: image_table(config, split, captioned, encoder if frozen else None)
                  for split, captioned in splits.items()}

        train_batches = make_batches(tables["train"], splits["train"], tokenizer, config.batch_size, training=True,
                                     max_length=config.max_length, seed=config.seed)
        validation_batches = make_batches(tables["validation"], splits["validation"], tokenizer, config.batch_size)
        if frozen:
            model = build_captioner(tokenizer.vocabulary_size, feature_shape=tables["train"].shape[1:],
                                    **config.model_settings())
        else:
            model = build_captioner(tokenizer.vocabulary_size, encoder=encoder, **config.model_settings())
        compile_sequence_model(model, run.optimizer(train=train_batches), config.label_smoothing)
        model, results = run.fit(model, train_batches, validation_batches)
        results["vocabulary_size"] = tokenizer.vocabulary_size
        graph = CaptionGraph(model, tokenizer)
        for split in ("validation", "test"):
            results[split] = {}
            for beam_size in sorted({1, config.beam_size}):
                results[split][f"beam_{beam_size}"] = score(graph, tables[split], splits[split].captions,
                                                            beam_size=beam_size, length_penalty=config.length_penalty)
        return run.finish(results)


# === Captioning as TensorFlow ops ===

class CaptionGraph:
    """Images -> captions as TensorFlow ops: (encoder,) image context, beam search, words.

    `model` is a trained captioner; `encoder` the frozen encoder its features came from (None
    when the model reads pixels itself). The same object scores while training and is what the
    export wraps, so the shipped graph is the one that was scored.
    """

    def __init__(self, model, tokenizer, encoder=None):
        from toolkit.models.captioner import image_context
        from toolkit.models.decoder import AttentionDecoder

        self.tokenizer, self.encoder = tokenizer, encoder
        self.context = image_context(model)
        self.decoder = AttentionDecoder.from_model(model)

    def trackables(self):
        return []  # words are only decoded (a constant table), never looked up

    def caption_pixels(self, pixels, beam_size, length_penalty, alignments=False):
        """Float pixels `[batch, size, size, 3]` in [0, 255] -> `{"caption", "score"}` (`caption`)."""
        inputs = pixels if self.encoder is None else self.encoder(pixels, training=False)
        return self.caption(inputs, beam_size, length_penalty, alignments)

    def caption(self, inputs, beam_size, length_penalty, alignments=False):
        """The model's image inputs (features or pixels) -> `{"caption": [batch] strings, "score": [batch]}`.

        `beam_size` and `length_penalty`: one for the batch or one per row. With `alignments`,
        also `attention [batch, words, positions]` (each word's weights over the feature map's
        positions, row by row) and `tokens`, the words ("" past a caption's end).
        """
        import tensorflow as tf

        from toolkit.decoding import beam_search
        from toolkit.preprocessing.sequences import BOS, EOS, PAD, UNK

        memory, *bridges = self.context(inputs, training=False)
        states = self.decoder.group_states(bridges)
        mask = tf.ones(tf.shape(memory)[:2], tf.bool)
        limits = tf.fill(tf.shape(memory)[:1], MAX_CAPTION_TOKENS)
        tokens, scores, *attention = beam_search(
            lambda t, s, c: self.decoder.step(t, s, *c, with_attention=alignments), states, (memory, mask), limits,
            beam_size=beam_size, bos_id=BOS, eos_id=EOS, length_penalty=length_penalty, banned_ids=(PAD, UNK, BOS),
            alignments=alignments)
        outputs = {"caption": self.tokenizer.decode(tf.RaggedTensor.from_tensor(tokens, padding=PAD)),
                   "score": scores}
        if alignments:
            outputs.update(attention=attention[0], tokens=tf.where(tokens != PAD, self.tokenizer.pieces(tokens), ""))
        return outputs


def caption_rows(caption, rows, batch_size=64, grid=None):
    """`caption(batch) -> {"caption", "score"}` over an array of rows, in batches; a list of dicts.

    With attention outputs, each answer also has `tokens` (the words) and `attention`: per word,
    its weights over the feature map, as `grid` = (rows, columns) nested lists.
    """
    import numpy as np
    import tensorflow as tf

    results = []
    for start in range(0, len(rows), batch_size):
        out = {k: v.numpy() for k, v in caption(tf.constant(np.asarray(rows[start:start + batch_size], "float32"))).items()}
        for row in range(len(out["caption"])):
            results.append({"caption": out["caption"][row].decode("utf-8"), "score": round(float(out["score"][row]), 6)})
            if "attention" in out:
                tokens = [t.decode("utf-8") for t in out["tokens"][row] if t]
                weights = out["attention"][row][:len(tokens)].reshape(len(tokens), *grid)
                results[-1].update(tokens=tokens, attention=np.round(weights, 4).tolist())
    return results


def score(graph, rows, references, beam_size, length_penalty, batch_size=64):
    """BLEU-1..4 and CIDEr-D of a `CaptionGraph` on image rows (the model's inputs) and their references."""
    import tensorflow as tf

    from toolkit.metrics import caption_scores

    @tf.function(autograph=False)  # the search's loops are explicit
    def caption(inputs):
        return graph.caption(inputs, beam_size, length_penalty)

    start = time.monotonic()
    hypotheses = [r["caption"] for r in caption_rows(caption, rows, batch_size)]
    return {**caption_scores(hypotheses, references), "beam_size": beam_size, "length_penalty": length_penalty,
            "images": len(rows), "seconds": round(time.monotonic() - start, 1)}


# === Export and evaluation ===

def captioner_archive(graph, size, beam_size, length_penalty):
    """Four signatures, answering `{"caption": string, "score": float}` per image:

    - `serving_default`: a batch of encoded images (`image_bytes`), decoded and resized in the
      graph, searched with the run's beam size and length penalty, with an `error` per image
      ("" for a good one; for one that is not a readable image its message and an empty
      caption, while the other rows are answered);
    - `caption`: the same, with a `beam_size` (1 = greedy) and a `length_penalty` per image;
    - `caption_pixels`: float pixels in [0, 255], `[batch, height, width, 3]`, with both;
    - `caption_pixels_attention`: as `caption_pixels`, plus each word's attention over the
      image's feature map (`attention [batch, words, positions]`, `tokens`): what
      `toolkit caption --attention-map` draws, from the search that chose the words.

    Every input has a leading batch dimension, so TF Serving's REST row format can express
    each request and its batching can merge requests with different settings.
    `graph` is a `captioning.CaptionGraph`: encoder, decoder, beam search and words in one
    TensorFlow function. `score` is the caption's log-probability / length**length_penalty.
    """
    import keras
    import tensorflow as tf

    from toolkit.preprocessing.image import decode_images

    archive = keras.export.ExportArchive()  # variables are tracked through the endpoints
    for resource in graph.trackables():
        archive.track(resource)

    def caption(image_bytes, beam_size, length_penalty):
        pixels, errors = decode_images(image_bytes, size, 3)
        answers = graph.caption_pixels(pixels, beam_size, length_penalty)
        good = tf.equal(errors, "")
        return {"caption": tf.where(good, answers["caption"], ""), "score": tf.where(good, answers["score"], 0.0),
                "error": errors}

    def serve(image_bytes):
        rows = tf.shape(image_bytes)[:1]
        return caption(image_bytes, tf.fill(rows, beam_size), tf.fill(rows, float(length_penalty)))

    def caption_pixels_attention(pixels, beam_size, length_penalty):
        return graph.caption_pixels(pixels, beam_size, length_penalty, alignments=True)

    image_bytes = tf.TensorSpec(shape=(None,), dtype=tf.string, name="image_bytes")
    pixels = tf.TensorSpec(shape=(None, *size, 3), dtype=tf.float32, name="pixels")
    search = [tf.TensorSpec(shape=(None,), dtype=tf.int32, name="beam_size"),
              tf.TensorSpec(shape=(None,), dtype=tf.float32, name="length_penalty")]
    archive.add_endpoint("serving_default", serve, input_signature=[image_bytes])
    archive.add_endpoint("caption", caption, input_signature=[image_bytes, *search])
    archive.add_endpoint("caption_pixels", graph.caption_pixels, input_signature=[pixels, *search])
    archive.add_endpoint("caption_pixels_attention", caption_pixels_attention, input_signature=[pixels, *search])
    return archive


def export_run(run_dir, to, name, version):
    """Exports the best model of a captioning run as `TO/NAME/VERSION`: image bytes in, captions out."""

    import numpy as np

    import toolkit.models.captioner  # noqa: F401  (registers the custom layers for loading)
    from toolkit import export, training
    from toolkit.models.image_encoders import build_image_encoder, is_frozen
    from toolkit.preprocessing.image import sample_png
    from toolkit.preprocessing.sequences import load_tokenizer

    run_dir = Path(run_dir)
    config = training.read_run(run_dir, KIND)
    settings = config["train"]
    model = training.load_best(run_dir)
    encoder = None
    if is_frozen(settings["encoder"]):
        encoder = build_image_encoder(settings["encoder"], settings["image_size"], weights=None)
        encoder.load_weights(run_dir / ENCODER_WEIGHTS)
    graph = CaptionGraph(model, load_tokenizer(run_dir, "caption"), encoder)
    size = settings["image_size"]
    parameters = model.count_params() + (encoder.count_params() if encoder is not None else 0)
    positions = model.get_layer("positions").input.shape[1:3]  # the feature map's rows and columns
    metadata = {"kind": KIND, "image_shape": [size, size, 3], "parameters": parameters,
                "attention_grid": [int(n) for n in positions],
                "beam_size": settings["beam_size"], "length_penalty": settings["length_penalty"],
                "max_caption_tokens": MAX_CAPTION_TOKENS, "train": settings, "metrics": config["metrics"]}
    archive = captioner_archive(graph, (size, size), settings["beam_size"], settings["length_penalty"])
    search = {"beam_size": [settings["beam_size"]], "length_penalty": [settings["length_penalty"]]}
    image, pixels = [sample_png(size, size)], np.zeros([1, size, size, 3], "float32")
    warmup = [("serving_default", {"image_bytes": image}), ("caption", {"image_bytes": image, **search}),
              ("caption_pixels", {"pixels": pixels, **search}), ("caption_pixels_attention", {"pixels": pixels, **search})]
    return export.write_saved_model(archive, to, name, version, metadata, warmup=warmup)


def evaluate(model_path, data_dir=None, split="test", beam_size=None, examples=None, batch_size=64,
             on_progress=None):
    """BLEU-1..4 and CIDEr-D of an exported captioner on a split, through its image-bytes path.

    Every image is decoded by the graph's own op (as `toolkit caption` does); `examples`: a PNG
    path for a figure of the first images with generated and reference captions.
    `on_progress(n, total)` is called as each chunk of n of the total images is captioned.
    """
    from toolkit.data import captions as caption_data
    from toolkit.metrics import caption_scores

    captioner = Captioner(model_path)
    splits = caption_data.load(data_dir)
    if split not in splits:
        raise ToolkitError(f"split must be one of {list(splits)}. Received: {split!r}")
    data = splits[split]
    start = time.monotonic()
    hypotheses = []
    if on_progress:
        on_progress(0, len(data))
    for first in range(0, len(data), 256):  # decoded pixels take 0.6 MB an image: a chunk at a time
        pixels = [captioner.decode(data.read(name), name) for name in data.names[first:first + 256]]
        results = captioner.caption_pixels(pixels, beam_size=beam_size, batch_size=batch_size)
        hypotheses += [r["caption"] for r in results]
        if on_progress:
            on_progress(len(pixels), len(data))
    seconds = time.monotonic() - start
    report = caption_scores(hypotheses, data.captions)
    report.update(model=str(captioner.model_dir), split=split, images=len(data),
                  beam_size=beam_size or captioner.metadata["beam_size"], seconds=round(seconds, 1),
                  images_per_second=round(len(data) / max(seconds, 1e-9), 1))
    if examples:
        plot_examples(data, hypotheses, examples)
        report["examples"] = str(examples)
    return report


def plot_examples(data, hypotheses, path, count=8, columns=4):
    """A grid of the first `count` images: the generated caption (bold) over two of the references."""
    import io
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    count = min(count, len(data))
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 6.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in zip(range(count), axes.flat):
        ax.imshow(Image.open(io.BytesIO(data.read(data.names[i]))).convert("RGB"))
        references = "\n".join(textwrap.fill("ref: " + r, 48) for r in data.captions[i][:2])
        ax.set_title(textwrap.fill(hypotheses[i], 40), fontsize=10, fontweight="bold", loc="left")
        ax.text(0, -0.03, references, transform=ax.transAxes, fontsize=8, va="top", color="dimgray")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.95, bottom=0.08, wspace=0.08, hspace=0.55)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


class Captioner(ImagePredictor):
    """An exported captioner: images in, `{"caption", "score"}` out."""

    kind = KIND
    signature_names = ("serving_default", "caption", "caption_pixels")
    metadata_fields = {**ImagePredictor.metadata_fields, "beam_size": positive_integer, "length_penalty": number}

    def caption(self, images, beam_size=None, length_penalty=None, batch_size=32, attention=False):
        """`{"caption", "score"}` per image, in the order given (`score`: log-probability per word ** penalty).

        An image is a path, encoded bytes (JPEG, PNG, GIF, BMP) or a numpy array of pixels in
        [0, 255] (`[height, width(, channels)]`; a 4-D array is a batch); one that cannot be read
        gets `{"error": message}` and the others are still captioned. `beam_size` (1 = greedy)
        and `length_penalty` default to the model's own. With `attention`, each answer also has
        `tokens` (its words) and `attention`: per word, its weights over the image's feature map
        (`attention_grid` rows x columns, top left first), from the search that chose the words.
        """
        beam_size, length_penalty = search_settings(self.metadata, beam_size, length_penalty)
        return answer_images(images, self.image_shape,
                             lambda pixels: self.caption_pixels(pixels, beam_size, length_penalty, batch_size, attention),
                             batch_size)

    @property
    def attention_grid(self):
        """(rows, columns) of the feature map the decoder attends over."""
        return tuple(self.metadata.get("attention_grid") or ())

    def caption_pixels(self, pixels, beam_size=None, length_penalty=None, batch_size=32, attention=False):
        """`caption`'s answers for decoded images (`decode`) of the model's size, in the order given."""
        beam, penalty = search_settings(self.metadata, beam_size, length_penalty)
        signature = self.signature("caption_pixels_attention" if attention else "caption_pixels")
        return caption_rows(lambda p: signature(pixels=p, **search_inputs(signature, len(p), beam, penalty)),
                            pixels, batch_size, grid=self.attention_grid)


PREDICTOR = Captioner
