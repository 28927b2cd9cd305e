"""What the commands print: one answer a line, tab-separated or as strict JSON, and progress on a terminal."""

import json
import math
import os
import sys
import time

import click


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


class Progress:
    """Progress of a command on stderr, only when stderr is a terminal; pipes and files get nothing.

    With a known total, a bar; without, a count:

        3,072/10,000 reviews [=========>                    ] 30% 412.3/s
      3,072 reviews (412.3/s)

    `total` is a number or a function giving one (or None); the function is called only when
    stderr is a terminal, so scripts do not pay for counting. The line is redrawn at most twice a
    second, and at the next `advance` after `echo` erased it to print an answer or an error.
    """

    BAR = 30  # characters between the brackets, fewer on a narrow terminal
    on_screen = None  # the Progress whose line is drawn on the terminal now, for `echo` to erase

    def __init__(self, what, stream=None, *, total=None):
        self.what, self.stream = what, stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.total = (total() if callable(total) else total) if self.enabled else None
        try:
            self.columns = os.get_terminal_size(self.stream.fileno()).columns or 80  # 0: size unknown
        except (AttributeError, OSError, ValueError):  # not a real terminal: a test's stream
            self.columns = 80
        self.count, self.start, self.shown, self.drawn = 0, time.monotonic(), 0.0, 0

    def advance(self, n=1):
        self.count += n
        now = time.monotonic()
        if self.enabled and (not self.drawn or now - self.shown >= 0.5):
            line = self.line(self.count / max(now - self.start, 1e-9))
            self.stream.write("\r" + line + " " * (self.drawn - len(line)))
            self.stream.flush()
            self.shown, self.drawn = now, len(line)
            Progress.on_screen = self

    def line(self, rate):
        if not self.total:
            return f"{self.count:,} {self.what} ({rate:,.1f}/s)"
        total = max(self.total, self.count)  # files added to a folder after it was counted
        head, tail = f"  {self.count:,}/{total:,} {self.what} ", f" {100 * self.count // total}% {rate:,.1f}/s"
        width = min(self.BAR, self.columns - 1 - len(head) - len(tail) - 2)
        if width < 5:
            return head.rstrip() + tail
        done = width * self.count // total
        bar = ("=" * done if done == width else "=" * done + ">").ljust(width)
        return f"{head}[{bar}]{tail}"

    def erase(self):
        if self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0
        if Progress.on_screen is self:
            Progress.on_screen = None

    def close(self):
        self.erase()
