"""`toolkit train COMMAND`: one subcommand per task; every default comes from the task's TrainConfig."""

import click

from cli import options
from cli.options import setting
from toolkit.config import ACTIVATIONS, BIGRAM_HASHES, CELLS
from toolkit.tasks import (
    captioning,
    forecasting,
    image_classification,
    language_model,
    text_classification,
    translation,
)


@click.group()
def train():
    """Train a model; an interrupted run resumes when the same command is run again."""


def run(task, settings, run_dir):
    """Trains `task` with the settings of the command line; its metrics."""
    import os

    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        from toolkit.runtime import import_tensorflow

        import_tensorflow()  # quietly, before Keras imports it
    return task.train(task.TrainConfig(**settings), run_dir)


def summary(results, run_dir):
    """One closing line: the test score (if the data has a test split) and where the details are."""
    test = results.get("test")
    if test is None:
        return f"Trained {results['epochs_trained']} epochs; no test split. Details: {run_dir}/metrics.json"
    scores = ", ".join(f"test {k} {v:.4f}" for k, v in test.items())
    return f"{scores} on {results['test_examples']} examples. Details: {run_dir}/metrics.json"


# === Text classification ===

TC = text_classification.TrainConfig


@train.command("sentiment")
@setting(TC, "dataset", metavar="tfds:NAME", callback=options.datasets(),
         help=f"Default: IMDB, or your class folders in --data-dir. {options.TFDS_HELP} E.g. tfds:imdb_reviews.")
@options.data_dir
@options.run_options(TC)
@setting(TC, "cell", type=click.Choice(CELLS))
@setting(TC, "units", help="Hidden units per direction.")
@setting(TC, "embedding_dim")
@setting(TC, "num_layers", "--layers", help="Stacked recurrent layers. 0: none, the pooled word (and bigram) "
                                            "vectors feed the head: a bag of n-grams (fastText).")
@setting(TC, "bidirectional", "--bidirectional/--unidirectional")
@setting(TC, "pooling", type=click.Choice(text_classification.POOLINGS),
         help="Sequence to vector: the last hidden state, or max/mean over the valid (unpadded) steps.")
@setting(TC, "activation", type=click.Choice(ACTIVATIONS), help="SimpleRNN state activation.")
@setting(TC, "recurrent_init", type=click.Choice(options.RECURRENT_INITS), help=options.RECURRENT_INIT_HELP)
@setting(TC, "dropout", help="On embeddings (channels) and before the head.")
@setting(TC, "bigram_buckets",
         help="Add embeddings of hashed (previous word, word) pairs: short phrases as units. 0 = off.")
@setting(TC, "bigram_hash", type=click.Choice(BIGRAM_HASHES),
         help="How a word pair picks its bucket: spectral (pairs of frequent words kept apart), or vocabulary (runs "
              "made before this option, resumed as they began).")
@setting(TC, "word_dropout", help="Training only: drop this fraction of each review's words, anew each epoch.")
@setting(TC, "crop", help="Training only: cut this fraction of reviews, drawn anew each epoch, to a random run of "
                           "their words (5 words to all, log-uniformly): a model that also reads one-line reviews.")
@setting(TC, "l2", help="L2 weight penalty: a Gaussian prior, i.e. MAP training.")
@setting(TC, "naive_bayes", "--naive-bayes", is_flag=True,
         help="With --layers 0 and two classes: NBSVM (Wang & Manning), the strong linear baseline. Each distinct word "
              "and bigram of a review weighs its naive Bayes log-count ratio times a learned weight, under --l2 "
              "(a Gaussian prior: MAP). --cell, --units, --embedding-dim, --pooling and --dropout build nothing; "
              "--word-dropout and --crop still apply.")
@setting(TC, "vocabulary_size")
@setting(TC, "max_length", help="Tokens kept per review; shorter ones are padded and masked.")
@setting(TC, "monitor", type=click.Choice(text_classification.MONITORS),
         help="The validation score that picks the exported epoch and stops early. Default: val_accuracy "
              "(val_loss with --regression).")
@setting(TC, "validation_split", help="Fraction of the train folder held out.")
@setting(TC, "regression", is_flag=True, help="Class folder names are numbers: fit them with squared error.")
@setting(TC, "init_from", metavar="LM",
         help="Start the embedding and recurrent layer from a language model (`toolkit train language-model`): its run "
              "folder, or an exported one (a name such as review_lm, or its folder). The classifier takes its cell, "
              "sizes and vocabulary, reads forwards, adds no bigram vectors (unless --bigram-buckets differs from the "
              "default), and fine-tunes every layer.")
@setting(TC, "freeze_epochs", help="With --init-from: keep the started layers as they are for this many epochs, "
                                     "while the new head learns on their features (gradual unfreezing).")
@setting(TC, "pretrained_rate", help="With --init-from: the started layers learn at this fraction of --learning-rate "
                                     "(discriminative fine-tuning; 1 = the same rate).")
@setting(TC, "cache", metavar="memory|none|DIR",
         help="Where token ids are kept between epochs: 'memory', 'none' (re-read the files each epoch), or files in "
              "the folder DIR (reused by later epochs and runs). Default: memory for IMDB and tfds sets, none for your "
              "folders.")
def train_sentiment(run_dir, **settings):
    """A recurrent text classifier on IMDB reviews, your own TRAIN/TEST class folders or a tfds text set."""
    click.echo(summary(run(text_classification, settings, run_dir), run_dir))


# === Image classification ===

IC = image_classification.TrainConfig


def _deprecated_version(ctx, param, value):
    if value is not None:
        click.echo("Warning: --version is deprecated and will be removed in 0.3; use --resnet-version", err=True)
    return value


@train.command("images")
@setting(IC, "dataset", metavar="[" + "|".join(image_classification.DATASETS) + "|tfds:NAME]",
         callback=options.datasets(*image_classification.DATASETS), default=None, show_default=False,
         help=f"Default: guessed from --data-dir (IDX files, class folders), else cifar10. {options.TFDS_HELP} "
              "E.g. tfds:mnist, tfds:rock_paper_scissors; read into memory, as cifar10 is.")
@options.data_dir
@options.run_options(IC)
@setting(IC, "arch", help="resnet20/32/44/56/110 (CIFAR-style), plain20.. (no shortcuts), resnet18/34/50/101/152 "
                          "(ImageNet-style), lenet5, alexnet, vgg11/13/16/19.")
@setting(IC, "resnet_version", type=click.IntRange(1, 2), help="CIFAR ResNets: 1 post-activation, 2 pre-activation.")
@click.option("--version", "old_resnet_version", type=click.IntRange(1, 2), default=None, hidden=True,
              callback=_deprecated_version, help="Deprecated spelling of --resnet-version.")
@setting(IC, "shortcut", type=click.Choice(["A", "B"]), help="CIFAR ResNets: A identity + zero padding, B 1x1 projection.")
@setting(IC, "width", help="CIFAR ResNets: filters of the first stage.")
@setting(IC, "image_size", type=int, help="Folder and tfds data: resize images to this square size.")
@setting(IC, "momentum")
@setting(IC, "nesterov")
@setting(IC, "l2", help="Weight decay as an L2 penalty (a Gaussian prior: MAP).")
@setting(IC, "warmup_epochs", help="Linear warm-up of the learning rate from 0.")
@setting(IC, "label_smoothing")
@setting(IC, "translate", help="Augmentation: random shifts up to N pixels.")
@setting(IC, "flip", help="Augmentation: horizontal flips.")
@setting(IC, "erase", help="Augmentation: random-erasing probability.")
@setting(IC, "validation_split", help="Fraction of the training images held out.")
@setting(IC, "cache", metavar="memory|none|DIR",
         help="Folder data is streamed from its files each epoch; keep the decoded pixels in 'memory', or in "
              "files in the folder DIR (reused by later epochs and runs). Default: none; cifar10, "
              "fashion_mnist and tfds sets are held in memory.")
def train_images(run_dir, old_resnet_version, **settings):
    """A CNN or ResNet on CIFAR-10, Fashion-MNIST, your own folder of class folders or a tfds image set."""
    from toolkit.data.images import guess_dataset

    if old_resnet_version is not None:
        settings["resnet_version"] = old_resnet_version
    settings["dataset"] = settings["dataset"] or guess_dataset(settings["data_dir"])
    click.echo(summary(run(image_classification, settings, run_dir), run_dir))


# === Translation ===

TR = translation.TrainConfig


@train.command("translation")
@options.data_dir
@setting(TR, "pairs", type=click.Path(dir_okay=False),
         help="Tab-separated sentence pairs (source<TAB>target, Anki/Tatoeba format) instead of Multi30k.")
@setting(TR, "source_language", "--src", help="Multi30k source language.")
@setting(TR, "target_language", "--tgt", help="Multi30k target language.")
@options.run_options(TR)
@setting(TR, "tokenizer", type=click.Choice(translation.TOKENIZERS),
         help="Subword pieces (nothing is unknown) or whole words (rare ones become <unk>).")
@setting(TR, "vocabulary_size", help="Per language.")
@setting(TR, "cell", type=click.Choice(CELLS))
@setting(TR, "units", help="Hidden units (per direction in the encoder).")
@setting(TR, "embedding_dim")
@setting(TR, "encoder_layers")
@setting(TR, "decoder_layers", help="Layer 1 reads the previous word; the attention context feeds the layers above it.")
@setting(TR, "bidirectional", "--bidirectional/--unidirectional", help="Encoder direction(s).")
@setting(TR, "attention", type=click.Choice(translation.ATTENTIONS),
         help="Multiplicative (Luong) or additive (Bahdanau) attention scores.")
@setting(TR, "dropout")
@setting(TR, "label_smoothing")
@setting(TR, "max_length", help="Training pairs with more tokens are left out.")
@setting(TR, "validation_split", help="--pairs only: fraction held out.")
@setting(TR, "beam_size", help="Search used for the scores and the exported model's default.")
@setting(TR, "length_penalty", help="Beam hypotheses compete by log p / length**this (0: raw log p, 1: per-token).")
@setting(TR, "init_from", metavar="RUN",
         help="Start from another translation run's best model, with its tokenisers and architecture: train on with "
              "a new schedule (e.g. --schedule cosine to anneal a run trained at a constant rate), or on your own "
              "--pairs. scripts/recover_run.py rebuilds a run folder from an exported translator.")
def train_translation(run_dir, **settings):
    """A recurrent encoder-decoder with attention on Multi30k (any two of en, de, fr, cs) or your pair file."""
    results = run(translation, settings, run_dir)
    split = "test" if results.get("test") else "validation"
    scores = results[split]
    click.echo(f"{split} BLEU {scores['bleu']:.2f}, chrF {scores['chrf']:.2f} (beam {scores['beam_size']}) on "
               f"{scores['sentences']} sentences. Details: {run_dir}/metrics.json")


# === Captioning ===

CA = captioning.TrainConfig


@train.command("captions")
@options.data_dir
@options.run_options(CA)
@setting(CA, "encoder", help="efficientnet_lite0 (ImageNet, frozen; run `toolkit convert efficientnet-lite0` once), "
                             "resnet18/34/50.. or cifar_resnet20.. (ours, trained end to end), or keras:NAME "
                             "(keras.applications.NAME with ImageNet weights, downloaded; frozen).")
@setting(CA, "encoder_weights", type=click.Path(dir_okay=False),
         help="The converted EfficientNet-Lite0 weights. Default: the toolkit cache.")
@setting(CA, "image_size", help="Images are resized to this square size.")
@setting(CA, "cell", type=click.Choice(CELLS))
@setting(CA, "units")
@setting(CA, "embedding_dim")
@setting(CA, "decoder_layers")
@setting(CA, "attention", type=click.Choice(captioning.ATTENTIONS),
         help="Soft attention over the feature map (Show, Attend and Tell), or none: the image is the "
              "decoder's initial state only (Show and Tell).")
@setting(CA, "dropout")
@setting(CA, "vocabulary_size", help="At most this many words.")
@setting(CA, "min_count", help="Rarer training words become <unk>.")
@setting(CA, "max_length", help="Training captions with more words are left out.")
@setting(CA, "label_smoothing")
@setting(CA, "beam_size", help="Search used for the scores and the exported model's default.")
@setting(CA, "length_penalty", help="Beam hypotheses compete by log p / length**this (0: raw log p, 1: per-word).")
def train_captions(run_dir, **settings):
    """A CNN encoder + recurrent decoder on Flickr8k (or the Kaggle layout, or COCO-style caption JSON)."""
    results = run(captioning, settings, run_dir)
    test = results["test"][f"beam_{settings['beam_size']}"]
    click.echo(f"test BLEU-4 {test['bleu_4']:.2f}, CIDEr-D {test['cider_d']:.2f} (beam {test['beam_size']}) on "
               f"{test['images']} images. Details: {run_dir}/metrics.json")


# === Forecasting ===

FO = forecasting.TrainConfig


@train.command("forecast")
@setting(FO, "csv", type=click.Path(dir_okay=False),
         help="A CSV with a date/time column and a value column. Default: Mauna Loa CO2, 1958-2001 (shipped with the toolkit).")
@setting(FO, "column", help="The value column (default: the only non-time column).")
@setting(FO, "time_column", help="The date/time column (default: the first that parses as dates).")
@setting(FO, "fill", type=click.Choice(forecasting.FILLS),
         help="Missing values and timestamps: interpolate linearly in time, or refuse the series.")
@options.run_options(FO)
@setting(FO, "window", help="Past values the model reads.")
@setting(FO, "horizon", help="Future values it forecasts at once.")
@setting(FO, "season", type=int, help="Steps per season for the seasonal-naive baseline "
                                      "(default: from the spacing: 52 weekly, 12 monthly, 7 daily, 24 hourly).")
@setting(FO, "cell", type=click.Choice(CELLS))
@setting(FO, "units")
@setting(FO, "num_layers", "--layers")
@setting(FO, "bidirectional", "--bidirectional/--unidirectional")
@setting(FO, "activation", type=click.Choice(ACTIVATIONS), help="SimpleRNN state activation.")
@setting(FO, "dropout")
@setting(FO, "loss", type=click.Choice(forecasting.LOSSES),
         help="gaussian: predict mean and variance, Gaussian NLL (gives intervals); mse: fixed variance.")
@setting(FO, "l2", help="L2 weight penalty (a Gaussian prior: MAP).")
@setting(FO, "validation_fraction", help="The part after training, in time.")
@setting(FO, "test_fraction", help="The last part of the series.")
def train_forecast(run_dir, **settings):
    """A recurrent forecaster of a univariate time series, against naive baselines."""
    results = run(forecasting, settings, run_dir)
    test = results["test"]
    click.echo(f"test MAE {test['model']['mae']:.4f} (last value {test['last_value']['mae']:.4f}, seasonal naive "
               f"{test['seasonal_naive']['mae']:.4f}) on {results['windows']['test']} windows. "
               f"Details: {run_dir}/metrics.json")


# === Language model ===

LM = language_model.TrainConfig


@train.command("language-model")
@options.data_dir
@setting(LM, "texts", type=click.Path(file_okay=False),
         help="A folder of .txt files of your own (any depth) instead of IMDB's train and unsup reviews.")
@options.run_options(LM)
@setting(LM, "cell", type=click.Choice(CELLS))
@setting(LM, "units", help="Hidden units of each recurrent layer.")
@setting(LM, "embedding_dim")
@setting(LM, "num_layers", "--layers", help="Stacked recurrent layers.")
@setting(LM, "dropout", help="On the embeddings (channels) and on the last layer's states.")
@setting(LM, "samples", help="Words drawn per batch for the sampled softmax in training (0: the full softmax); "
                             "validation always takes the full softmax.")
@setting(LM, "vocabulary_size", help="Words in the vocabulary, which a classifier started from this model shares.")
@setting(LM, "max_length", help="Tokens kept per text.")
@setting(LM, "sequence_length", help="Steps per training window: where backpropagation through time is truncated.")
@setting(LM, "validation_fraction", help="Fraction of the texts held out for the validation perplexity.")
def train_language_model(run_dir, **settings):
    """A recurrent language model of reviews (IMDB's train and unlabelled ones, or your --texts), to start
    classifiers from (`toolkit train sentiment --init-from RUN`) and to sample from (`toolkit generate`)."""
    results = run(language_model, settings, run_dir)
    validation = results["validation"]
    click.echo(f"validation perplexity {validation['perplexity']:.2f} on {validation['texts']} held-out texts "
               f"(epoch {results['best_epoch']}). Details: {run_dir}/metrics.json")
