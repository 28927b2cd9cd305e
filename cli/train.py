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
@click.option("--dropout", default=0.0, show_default=True, help="On embeddings (channels) and before the head.")
@click.option("--l2", default=0.0, show_default=True, help="L2 weight penalty: a Gaussian prior, i.e. MAP training.")
@click.option("--vocabulary-size", default=20000, show_default=True)
@click.option("--max-length", default=800, show_default=True, help="Tokens kept per review; shorter ones are padded and masked.")
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True)
@click.option("--learning-rate", default=1e-3, show_default=True)
@click.option("--clip-norm", type=float, default=None, help="Clip gradients to this global norm (exploding gradients).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--epochs", default=3, show_default=True)
@click.option("--patience", default=2, show_default=True, help="Stop after this many epochs without a better validation loss.")
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


def summary(results, run_dir):
    """One closing line: the test score (if the data has a test split) and where the details are."""
    test = results.get("test")
    if test is None:
        return f"Trained {results['epochs_trained']} epochs; no test split. Details: {run_dir}/metrics.json"
    scores = ", ".join(f"test {k} {v:.4f}" for k, v in test.items())
    return f"{scores} on {results['test_examples']} examples. Details: {run_dir}/metrics.json"
