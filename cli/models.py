"""`toolkit models`: the models found by name, read from their metadata alone (no TensorFlow: instant)."""

import sys

import click

from cli import options
from cli.output import echo, echo_answer
from toolkit.errors import ToolkitError

# The test scores a listing shows, wherever a model's metrics hold them: each family reports its own. Where
# the scores come in groups, one per setting (a captioner's per beam size, a forecaster's for the model and
# for its baselines), the group of the setting that serves: `beam_{beam_size}`, `model`.
HEADLINE_SCORES = ("accuracy", "accuracy_flip_averaged", "mae", "rmse", "bleu", "chrf", "bleu_4", "cider_d",
                   "interval_95_coverage")


@click.command()
@options.json_output
def models(as_json):
    """List the models that commands (and `toolkit.load`) find by name: NAME, its newest
    version (older ones in brackets), kind, the runtime that answers by default (litert:
    the model's LiteRT form, no TensorFlow; tensorflow: its SavedModel), headline test scores,
    model card and the version folder used, tab-separated.

    They are looked up in the folders of $TOOLKIT_MODELS_DIR (several separated by ':'), then
    the repository's saved_models/, then the copy installed with the package; the first
    folder of a name wins. A model whose metadata cannot be read is reported on stderr and
    the others are still listed; the exit code is then 1.

    \b
      toolkit models
      toolkit models --json
    """
    from toolkit.serving import found_models

    failed = False
    for name, folder in found_models().items():
        try:
            record = describe(name, folder)
        except ToolkitError as e:
            echo(f"Error: {name}: {e}", err=True)
            failed = True
            continue
        failed |= not echo_answer(record, line(record), as_json)
    if failed:
        sys.exit(1)


def describe(name, folder):
    """What `toolkit models` says about the model in FOLDER, from its metadata; ToolkitError if that is broken."""
    from toolkit.lite import choose_runtime
    from toolkit.serving import METADATA_PATH, model_versions, read_metadata, resolve_model_dir
    from toolkit.tasks import TASKS

    version_dir = resolve_model_dir(folder)
    metadata = read_metadata(version_dir) or {}  # a SavedModel another tool wrote: no kind, no scores
    card = folder / "MODEL_CARD.md"
    try:
        scores = headline_scores(metadata)
    except (AttributeError, TypeError):
        raise ToolkitError(f"broken model metadata {version_dir / METADATA_PATH}: its metrics are not "
                           "JSON objects of scores") from None
    converts = hasattr(TASKS.get(metadata.get("kind")), "LITE_PREDICTOR")
    return {"name": name, "version": int(version_dir.name) if version_dir.name.isdigit() else None,
            "versions": model_versions(folder), "kind": metadata.get("kind"),
            "runtime": choose_runtime(version_dir, "auto", converts), "test": scores,
            "card": str(card) if card.is_file() else None, "folder": str(version_dir)}


def headline_scores(metadata):
    """{score: value} of HEADLINE_SCORES on the test split; an ensemble's are its members', `{"members": [...]}`
    (the average of several models was not scored at export)."""
    if "ensemble" in metadata:
        return {"members": [_scores((member.get("metrics") or {}).get("test"), metadata)
                            for member in metadata["ensemble"]]}
    return _scores((metadata.get("metrics") or {}).get("test"), metadata)


def _scores(test, metadata):
    from toolkit.serving import number

    test = test or {}
    served = test.get(f"beam_{metadata.get('beam_size')}", test.get("model"))
    scores = {**test, **served} if isinstance(served, dict) else test
    return {name: scores[name] for name in HEADLINE_SCORES if number(scores.get(name))}


def line(record):
    """The tab-separated line of a record: name, version, kind, runtime, scores, card, folder."""
    older = [str(v) for v in record["versions"] if v != record["version"]]
    version = ("-" if record["version"] is None else str(record["version"])) + (f" ({', '.join(older)})" if older else "")
    test = record["test"]
    if "members" in test:
        scores = "members: " + "; ".join(_text(member) or "-" for member in test["members"])
    else:
        scores = _text(test) or "-"
    return "\t".join([record["name"], version, record["kind"] or "-", record["runtime"], scores, record["card"] or "-",
                      record["folder"]])


def _text(scores):
    return ", ".join(f"{name} {value:.4g}" for name, value in scores.items())
