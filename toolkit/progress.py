"""Progress of long work on stderr, only when stderr is a terminal; pipes and files get nothing.

The library draws its own bars where it already talks to stderr (a download, encoding a
caption set's images once); elsewhere its functions take an `on_progress(n, total)` callback
(n more done, of total; n = 0 first, as the work starts), which the commands fill with
`Progress(...).advance`. Neither ever writes to stdout, so `--json` output stays strict JSON.
"""

import os
import sys
import time


class Progress:
    """Progress of a command on stderr, only when stderr is a terminal; pipes and files get nothing.

    With a known total, a bar; without, a count:

        3,072/10,000 reviews [=========>                    ] 30% 412.3/s
      3,072 reviews (412.3/s)

    `total` is a number or a function giving one (or None); the function is called only when
    stderr is a terminal, so scripts do not pay for counting. `advance(n, total)` may also give
    it, when only the worker knows it (a worker's `advance(0, total)` first also starts the clock
    of the rate). `unit` divides the numbers shown (1 << 20: bytes shown as MiB). The line is
    redrawn at most twice a second, when the count reaches the total (so a
    finished bar is seen full), and at the next `advance` after `echo` erased it to print an
    answer or an error. As a context manager, the line is erased however the block ends.
    """

    BAR = 30  # characters between the brackets, fewer on a narrow terminal
    on_screen = None  # the Progress whose line is drawn on the terminal now, for `echo` to erase

    def __init__(self, what, stream=None, *, total=None, unit=1):
        self.what, self.stream, self.unit = what, stream or sys.stderr, unit
        self.enabled = self.stream.isatty()
        self.total = (total() if callable(total) else total) if self.enabled else None
        try:
            self.columns = os.get_terminal_size(self.stream.fileno()).columns or 80  # 0: size unknown
        except (AttributeError, OSError, ValueError):  # not a real terminal: a test's stream
            self.columns = 80
        self.count, self.start, self.shown, self.drawn = 0, time.monotonic(), 0.0, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def advance(self, n=1, total=None):
        now = time.monotonic()
        if not self.count and not n:  # `advance(0, total)` says the work starts: loading a model is no part of the rate
            self.start = now
        self.count += n
        if total is not None and self.enabled:
            self.total = total
        done = bool(self.total) and self.count >= self.total
        if self.enabled and (not self.drawn or done or now - self.shown >= 0.5):
            line = self.line(self.count / max(now - self.start, 1e-9))
            self.stream.write("\r" + line + " " * (self.drawn - len(line)))
            self.stream.flush()
            self.shown, self.drawn = now, len(line)
            Progress.on_screen = self

    def line(self, rate):
        if not self.total:
            return f"{self.number(self.count)} {self.what} ({self.number(rate, 1)}/s)"
        total = max(self.total, self.count)  # files added to a folder after it was counted
        head = f"  {self.number(self.count)}/{self.number(total)} {self.what} "
        tail = f" {100 * self.count // total}% {self.number(rate, 1)}/s"
        width = min(self.BAR, self.columns - 1 - len(head) - len(tail) - 2)
        if width < 5:
            return head.rstrip() + tail
        done = width * self.count // total
        bar = ("=" * done if done == width else "=" * done + ">").ljust(width)
        return f"{head}[{bar}]{tail}"

    def number(self, value, decimals=0):
        """`value` in units, with thousands separators; one decimal when a unit groups several (MiB)."""
        if self.unit != 1:
            value, decimals = value / self.unit, 1
        return f"{value:,.{decimals}f}"

    def erase(self):
        if self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0
        if Progress.on_screen is self:
            Progress.on_screen = None

    def close(self):
        self.erase()
