"""What the commands print: one answer a line, tab-separated or as strict JSON."""

import json
import math

import click


def echo_answer(record, line, as_json):
    """Prints `record` as one strict JSON object with --json, else `line`; True when printed.

    JSON has no NaN or Infinity: an answer holding a non-finite number is not printed but
    reported as an `Error:` line on stderr (False), and the caller goes on with the others.
    """
    bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        name = record.get("file") or record.get("source") or "an input"
        click.echo(f"Error: {name}: the model answered a non-finite {', '.join(bad)}", err=True)
        return False
    click.echo(json.dumps(record, ensure_ascii=False, allow_nan=False) if as_json else line)
    return True


def echo_report(report):
    """A report (of `toolkit evaluate`, `toolkit diagnose`) as indented strict JSON."""
    click.echo(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False))
