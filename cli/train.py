"""`toolkit train FAMILY`: one subcommand per model family."""

import click

from cli import options


@click.group()
def train():
    """Train a model; interrupted runs resume when the same command is run again."""


@train.command()
@options.data_dir
@click.option("--out", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run folder: checkpoints, history, curves, metrics. Re-run to resume.")
@click.option("--cell", type=click.Choice(["simple_rnn", "lstm", "gru"]), default="lstm", show_default=True)
@click.option("--units", default=64, show_default=True, help="Hidden units per direction.")
@click.option("--embedding-dim", default=128, show_default=True)
@click.option("--layers", "num_layers", default=1, show_default=True, help="Stacked recurrent layers.")
@click.option("--bidirectional/--unidirectional", default=False, show_default=True)
@click.option("--pooling", type=click.Choice(["last", "max", "mean", "mean_max"]), default="last", show_default=True,
              help="Sequence to vector: the last hidden state, or max/mean over the valid (unpadded) steps.")
@click.option("--activation", default="tanh", show_default=True, help="SimpleRNN state activation (tanh, relu, ...).")
@options.recurrent_init
@click.option("--dropout", default=0.0, show_default=True, help="On embeddings (channels) and before the head.")
@click.option("--bigram-buckets", default=0, show_default=True,
              help="Add embeddings of hashed (previous word, word) pairs: short phrases as units. 0 = off.")
@click.option("--word-dropout", default=0.0, show_default=True,
              help="Training only: drop this fraction of each review's words, anew each epoch.")
@click.option("--l2", default=0.0, show_default=True, help="L2 weight penalty: a Gaussian prior, i.e. MAP training.")
@click.option("--vocabulary-size", default=20000, show_default=True)
@click.option("--max-length", default=800, show_default=True, help="Tokens kept per review; shorter ones are padded and masked.")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@click.option("--learning-rate", default=1e-3, show_default=True)
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="Learning rate: constant, or cosine decay to zero over --epochs.")
@click.option("--clip-norm", type=float, default=None, help="Clip gradients to this global norm (exploding gradients).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--epochs", default=3, show_default=True)
@click.option("--patience", default=2, show_default=True, help="Stop after this many epochs without a better validation loss.")
@click.option("--monitor", type=click.Choice(["val_loss", "val_accuracy"]), default="val_loss", show_default=True,
              help="The validation score that picks the exported epoch and stops early.")
@click.option("--validation-split", default=0.1, show_default=True, help="Fraction of the train folder held out.")
@click.option("--seed", default=1337, show_default=True)
@click.option("--regression", is_flag=True, help="Class folder names are numbers: fit them with squared error.")
def sentiment(run_dir, **settings):
    """A recurrent text classifier on IMDB reviews, or on your own TRAIN/TEST class folders."""
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.sentiment import TrainConfig, train as train_sentiment


    results = train_sentiment(TrainConfig(**settings), run_dir)
    click.echo(summary(results, run_dir))


@train.command()
@options.data_dir
@click.option("--pairs", type=click.Path(dir_okay=False), default=None,
              help="Tab-separated sentence pairs (source<TAB>target, Anki/Tatoeba format) instead of Multi30k.")
@click.option("--src", "source_language", default="en", show_default=True, help="Multi30k source language.")
@click.option("--tgt", "target_language", default="de", show_default=True, help="Multi30k target language.")
@click.option("--out", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run folder: checkpoints, history, curves, metrics. Re-run to resume.")
@click.option("--tokenizer", type=click.Choice(["sentencepiece", "words"]), default="sentencepiece", show_default=True,
              help="Subword pieces (nothing is unknown) or whole words (rare ones become <unk>).")
@click.option("--vocabulary-size", default=8000, show_default=True, help="Per language.")
@click.option("--cell", type=click.Choice(["gru", "lstm", "simple_rnn"]), default="gru", show_default=True)
@click.option("--units", default=256, show_default=True, help="Hidden units (per direction in the encoder).")
@click.option("--embedding-dim", default=256, show_default=True)
@click.option("--encoder-layers", default=1, show_default=True)
@click.option("--decoder-layers", default=2, show_default=True,
              help="Layer 1 reads the previous word; the attention context feeds the layers above it.")
@click.option("--bidirectional/--unidirectional", default=True, show_default=True, help="Encoder direction(s).")
@click.option("--attention", type=click.Choice(["luong", "bahdanau"]), default="luong", show_default=True,
              help="Multiplicative (Luong) or additive (Bahdanau) attention scores.")
@click.option("--dropout", default=0.3, show_default=True)
@click.option("--label-smoothing", default=0.1, show_default=True)
@click.option("--max-length", default=100, show_default=True, help="Training pairs with more tokens are left out.")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@click.option("--learning-rate", default=1e-3, show_default=True)
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True)
@click.option("--clip-norm", type=float, default=1.0, show_default=True,
              help="Clip gradients to this global norm: backpropagation through time can explode.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--epochs", default=20, show_default=True)
@click.option("--patience", default=3, show_default=True, help="Stop after this many epochs without a better validation loss.")
@click.option("--validation-split", default=0.05, show_default=True, help="--pairs only: fraction held out.")
@click.option("--beam-size", default=5, show_default=True, help="Search used for the scores and the exported model's default.")
@click.option("--length-penalty", default=1.0, show_default=True,
              help="Beam hypotheses compete by log p / length**this (0: raw log p, 1: per-token).")
@click.option("--seed", default=1337, show_default=True)
def translation(run_dir, **settings):
    """A recurrent encoder-decoder with attention on Multi30k (any two of en, de, fr, cs) or your pair file."""
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.translation import TrainConfig, train as train_translation

    results = train_translation(TrainConfig(**settings), run_dir)
    test = results.get("test") or results["validation"]
    split = "test" if results.get("test") else "validation"
    click.echo(f"{split} BLEU {test['bleu']:.2f}, chrF {test['chrf']:.2f} (beam {test['beam_size']}) on "
               f"{test['sentences']} sentences. Details: {run_dir}/metrics.json")


@train.command()
@click.option("--csv", "csv", type=click.Path(dir_okay=False), default=None,
              help="A CSV with a date/time column and a value column. Default: Mauna Loa CO2 (statsmodels).")
@click.option("--column", default=None, help="The value column (default: the only non-time column).")
@click.option("--time-column", default=None, help="The date/time column (default: the first that parses as dates).")
@click.option("--fill", type=click.Choice(["interpolate", "error"]), default="interpolate", show_default=True,
              help="Missing values and timestamps: interpolate linearly in time, or refuse the series.")
@click.option("--out", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run folder: checkpoints, history, curves, metrics. Re-run to resume.")
@click.option("--window", default=104, show_default=True, help="Past values the model reads.")
@click.option("--horizon", default=52, show_default=True, help="Future values it forecasts at once.")
@click.option("--season", type=int, default=None, help="Steps per season for the seasonal-naive baseline "
              "(default: from the spacing: 52 weekly, 12 monthly, 7 daily, 24 hourly).")
@click.option("--cell", type=click.Choice(["simple_rnn", "lstm", "gru"]), default="lstm", show_default=True)
@click.option("--units", default=64, show_default=True)
@click.option("--layers", "num_layers", default=1, show_default=True)
@click.option("--bidirectional/--unidirectional", default=False, show_default=True)
@click.option("--activation", default="tanh", show_default=True, help="SimpleRNN state activation.")
@click.option("--dropout", default=0.0, show_default=True)
@click.option("--loss", type=click.Choice(["gaussian", "mse"]), default="gaussian", show_default=True,
              help="gaussian: predict mean and variance, Gaussian NLL (gives intervals); mse: fixed variance.")
@click.option("--l2", default=0.0, show_default=True, help="L2 weight penalty (a Gaussian prior: MAP).")
@click.option("--learning-rate", default=3e-3, show_default=True)
@click.option("--clip-norm", type=float, default=1.0, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--epochs", default=100, show_default=True)
@click.option("--patience", default=15, show_default=True)
@click.option("--validation-fraction", default=0.15, show_default=True, help="The part after training, in time.")
@click.option("--test-fraction", default=0.15, show_default=True, help="The last part of the series.")
@click.option("--seed", default=1337, show_default=True)
def forecast(run_dir, **settings):
    """A recurrent forecaster of a univariate time series, against naive baselines."""
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.forecast import TrainConfig, train as train_forecast

    results = train_forecast(TrainConfig(**settings), run_dir)
    test = results["test"]
    click.echo(f"test MAE {test['model']['mae']:.4f} (last value {test['last_value']['mae']:.4f}, seasonal naive "
               f"{test['seasonal_naive']['mae']:.4f}) on {results['windows']['test']} windows. "
               f"Details: {run_dir}/metrics.json")


def summary(results, run_dir):
    """One closing line: the test score (if the data has a test split) and where the details are."""
    test = results.get("test")
    if test is None:
        return f"Trained {results['epochs_trained']} epochs; no test split. Details: {run_dir}/metrics.json"
    scores = ", ".join(f"test {k} {v:.4f}" for k, v in test.items())
    return f"{scores} on {results['test_examples']} examples. Details: {run_dir}/metrics.json"


@train.command()
@click.option("--dataset", type=click.Choice(["cifar10", "fashion_mnist", "folder"]), default=None,
              help="Default: guessed from --data-dir (IDX files, class folders), else cifar10.")
@options.data_dir
@click.option("--out", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run folder: checkpoints, history, curves, metrics. Re-run to resume.")
@click.option("--arch", default="resnet20", show_default=True,
              help="resnet20/32/44/56/110 (CIFAR-style), plain20.. (no shortcuts), resnet18/34/50/101/152 "
                   "(ImageNet-style), lenet5, alexnet, vgg11/13/16/19.")
@click.option("--version", type=click.Choice(["1", "2"]), default="1", show_default=True,
              help="CIFAR ResNets: 1 post-activation, 2 pre-activation.")
@click.option("--shortcut", type=click.Choice(["A", "B"]), default="A", show_default=True,
              help="CIFAR ResNets: A identity + zero padding, B 1x1 projection.")
@click.option("--width", default=16, show_default=True, help="CIFAR ResNets: filters of the first stage.")
@click.option("--image-size", type=int, default=None, help="Folder data: resize images to this square size.")
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True)
@click.option("--learning-rate", default=0.1, show_default=True, help="Peak learning rate.")
@click.option("--momentum", default=0.9, show_default=True)
@click.option("--nesterov/--no-nesterov", default=True, show_default=True)
@click.option("--l2", default=5e-4, show_default=True, help="Weight decay as an L2 penalty (a Gaussian prior: MAP).")
@click.option("--schedule", type=click.Choice(["cosine", "step", "constant"]), default="cosine", show_default=True)
@click.option("--warmup-epochs", default=1, show_default=True)
@click.option("--label-smoothing", default=0.0, show_default=True)
@click.option("--translate", default=4, show_default=True, help="Augmentation: random shifts up to N pixels.")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Augmentation: horizontal flips.")
@click.option("--erase", default=0.0, show_default=True, help="Augmentation: random-erasing probability.")
@click.option("--clip-norm", type=float, default=None)
@click.option("--patience", type=int, default=None, help="Early stopping patience (default: train all epochs).")
@click.option("--validation-split", default=0.1, show_default=True)
@click.option("--seed", default=1337, show_default=True)
def images(run_dir, dataset, data_dir, version, **settings):
    """A CNN or ResNet on CIFAR-10, Fashion-MNIST or your own folder of class folders."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from toolkit.runtime import import_tensorflow

        import_tensorflow()
    from toolkit.images import TrainConfig, train as train_images

    if dataset is None:
        dataset = _guess_dataset(data_dir)
    results = train_images(TrainConfig(dataset=dataset, data_dir=data_dir, version=int(version), **settings), run_dir)
    click.echo(summary(results, run_dir))


def _guess_dataset(data_dir):
    """IDX files: Fashion-MNIST; class folders: a folder data set; otherwise CIFAR-10 (tarball or download)."""
    from pathlib import Path

    path = Path(data_dir) if data_dir else None
    if path is None or not path.is_dir():
        return "cifar10"
    if any(path.glob("*-idx3-ubyte*")):
        return "fashion_mnist"
    root = path / "train" if (path / "train").is_dir() else path
    if not any(path.glob("*.tar.gz")) and any(p.is_dir() for p in root.iterdir()):
        return "folder"
    return "cifar10"


@train.command()
@options.data_dir
@click.option("--out", "run_dir", type=click.Path(file_okay=False), required=True,
              help="Run folder: checkpoints, history, curves, metrics. Re-run to resume.")
@click.option("--encoder", default="efficientnet_lite0", show_default=True,
              help="efficientnet_lite0 (ImageNet, frozen; run `toolkit convert efficientnet-lite0` once), "
                   "resnet18/34/50.. or cifar_resnet20.. (ours, trained end to end), or keras:NAME "
                   "(keras.applications.NAME with ImageNet weights, downloaded; frozen).")
@click.option("--encoder-weights", type=click.Path(dir_okay=False), default=None,
              help="The converted EfficientNet-Lite0 weights. Default: the toolkit cache.")
@click.option("--image-size", default=224, show_default=True, help="Images are resized to this square size.")
@click.option("--cell", type=click.Choice(["lstm", "gru", "simple_rnn"]), default="lstm", show_default=True)
@click.option("--units", default=512, show_default=True)
@click.option("--embedding-dim", default=256, show_default=True)
@click.option("--decoder-layers", default=1, show_default=True)
@click.option("--attention", type=click.Choice(["bahdanau", "luong", "none"]), default="bahdanau", show_default=True,
              help="Soft attention over the feature map (Show, Attend and Tell), or none: the image is the "
                   "decoder's initial state only (Show and Tell).")
@click.option("--dropout", default=0.5, show_default=True)
@click.option("--vocabulary-size", default=10000, show_default=True, help="At most this many words.")
@click.option("--min-count", default=3, show_default=True, help="Rarer training words become <unk>.")
@click.option("--max-length", default=40, show_default=True, help="Training captions with more words are left out.")
@click.option("--label-smoothing", default=0.1, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@click.option("--learning-rate", default=1e-3, show_default=True)
@click.option("--clip-norm", type=float, default=5.0, show_default=True,
              help="Clip gradients to this global norm: backpropagation through time can explode.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--epochs", default=20, show_default=True)
@click.option("--patience", default=3, show_default=True, help="Stop after this many epochs without a better validation loss.")
@click.option("--beam-size", default=3, show_default=True, help="Search used for the scores and the exported model's default.")
@click.option("--length-penalty", default=1.0, show_default=True,
              help="Beam hypotheses compete by log p / length**this (0: raw log p, 1: per-word).")
@click.option("--seed", default=1337, show_default=True)
def captions(run_dir, **settings):
    """A CNN encoder + recurrent decoder on Flickr8k (or the Kaggle layout, or COCO-style caption JSON)."""
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.captioning import TrainConfig, train as train_captions

    results = train_captions(TrainConfig(**settings), run_dir)
    test = results["test"][f"beam_{settings['beam_size']}"]
    click.echo(f"test BLEU-4 {test['bleu_4']:.2f}, CIDEr-D {test['cider_d']:.2f} (beam {test['beam_size']}) on "
               f"{test['images']} images. Details: {run_dir}/metrics.json")
