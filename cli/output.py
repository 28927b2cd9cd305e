"""What the commands print: one answer a line, tab-separated or as strict JSON."""

import json
import math
import time

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


class Progress:
    """A count of answered inputs on stderr, redrawn at most twice a second, only when stderr is a terminal.

    Pipes and files get nothing, so the output of scripts stays clean.
    """

    def __init__(self, what, stream=None):
        import sys

        self.what, self.stream = what, stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.count, self.start, self.shown = 0, time.monotonic(), 0.0

    def advance(self, n=1):
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self.shown >= 0.5:
            rate = self.count / max(now - self.start, 1e-9)
            self.stream.write(f"\r{self.count:,} {self.what} ({rate:,.1f}/s)")
            self.stream.flush()
            self.shown = now

    def close(self):
        if self.enabled and self.shown:
            self.stream.write("\r" + " " * 40 + "\r")
            self.stream.flush()
