"""`toolkit`: one click group; TensorFlow is imported inside commands, so `--help` is instant."""

import os
import sys

import click

from cli import (
    caption,
    classify,
    convert,
    diagnose,
    evaluate,
    export,
    forecast,
    generate,
    models,
    plot,
    predict,
    train,
    translate,
)
from toolkit import __version__
from toolkit.errors import ToolkitError


def version_line():
    """`toolkit --version`: the toolkit's, and the runtimes' that answer (from package metadata: nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    from toolkit.lite import runtime_version

    try:
        tensorflow = version("tensorflow")
    except PackageNotFoundError:
        tensorflow = "not installed"
    litert = runtime_version() or "not installed"
    return (f"%(prog)s %(version)s (LiteRT runtime {litert}; TensorFlow {tensorflow}; "
            "`toolkit models` says which answers each model)")


class ToolkitGroup(click.Group):
    """Turns the errors a user can cause into one line on stderr and a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ToolkitError, ValueError) as e:
            if os.environ.get("TOOLKIT_DEBUG"):
                raise
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            sys.exit(130)


@click.group(cls=ToolkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="toolkit", message=version_line())
def toolkit():
    """Train, export and serve the classic deep-learning models for text and images.

    \b
      toolkit predict review.txt          sentiment of a movie review (shipped model)
      toolkit classify photo.jpg          the class of an image (shipped CIFAR-10 ResNet)
      toolkit caption photo.jpg           a sentence about an image (shipped Flickr8k captioner)
      toolkit translate "A dog runs."     English to German (shipped Multi30k translator)
      toolkit forecast series.csv         the next values of a time series (shipped CO2 model)
      toolkit generate "The film"         a review's next words (your language model: train language-model)
      toolkit train sentiment --out RUN   train on IMDB or your own class folders
      toolkit export RUN --name NAME      a SavedModel in TF Serving's layout
      toolkit models                      the models found by name: versions, test scores, cards
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


toolkit.add_command(predict.predict)
toolkit.add_command(classify.classify)
toolkit.add_command(translate.translate)
toolkit.add_command(caption.caption)
toolkit.add_command(forecast.forecast)
toolkit.add_command(generate.generate)
toolkit.add_command(train.train)
toolkit.add_command(evaluate.evaluate)
toolkit.add_command(export.export)
toolkit.add_command(plot.plot)
toolkit.add_command(diagnose.diagnose)
toolkit.add_command(models.models)
toolkit.add_command(convert.convert)


def main():
    toolkit(prog_name="toolkit")


if __name__ == "__main__":
    main()
