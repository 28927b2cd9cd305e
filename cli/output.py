"""What the commands print: one answer a line, tab-separated or as strict JSON, and progress on a terminal."""

import json
import math

import click

from toolkit.progress import Progress


def echo(line="", err=False):
    """`click.echo`, first erasing a progress bar drawn on the terminal, so the line starts a line of its own."""
    if Progress.on_screen:
        Progress.on_screen.erase()
    click.echo(line, err=err)


def echo_answer(record, line, as_json):
    """Prints `record` as one strict JSON object with --json, else `line`; True when printed.

    JSON has no NaN or Infinity: an answer holding a non-finite number is not printed but
    reported as an `Error:` line on stderr (False), and the caller goes on with the others.
    """
    bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        name = record.get("file") or record.get("source") or "an input"
        echo(f"Error: {name}: the model answered a non-finite {', '.join(bad)}", err=True)
        return False
    echo(json.dumps(record, ensure_ascii=False, allow_nan=False) if as_json else line)
    return True


def echo_report(report):
    """A report (of `toolkit evaluate`, `toolkit diagnose`) as indented strict JSON."""
    click.echo(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False))
