"""Options shared by several commands, defined once."""

import click

data_dir = click.option(
    "--data-dir", type=click.Path(), default=None,
    help="Local copy of the data set (folder or archive). Default: $TOOLKIT_DATA_DIR/<dataset>, else download.")
json_output = click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one JSON object per input.")


def model_option(default_name):
    return click.option(
        "--model", "model_path", type=click.Path(), default=None,
        help=f"A SavedModel folder, or a TF Serving model folder (newest version). "
             f"Default: the shipped saved_models/{default_name}.")


def beam_size(what, shipped):
    return click.option("--beam-size", type=click.IntRange(min=1, max=64), default=None,
                        help=f"{what} kept while searching; 1 is greedy. Default: the model's ({shipped} for the shipped one).")


length_penalty = click.option("--length-penalty", type=float, default=None,
                              help="Hypotheses compete by log p / length**this. Default: the model's.")


# The choices of toolkit.layers.recurrent.RECURRENT_INITS (listed here so that --help imports no Keras).
recurrent_init = click.option(
    "--recurrent-init", type=click.Choice(["orthogonal", "glorot_uniform", "uniform", "identity"]),
    default="orthogonal", show_default=True,
    help="How the recurrent matrix starts: orthogonal (Keras' default), uniform = U(-0.08, 0.08) "
         "(early seq2seq work: a fresh SimpleRNN's gradient vanishes), identity (IRNN, for relu).")
