"""Univariate time series: a CSV's date/time and value columns, or the Mauna Loa CO2 series.

A series must be regular for windows to mean anything: its time column must be sorted and
free of duplicates (refused otherwise, naming the row), and its step is the median spacing.
Gaps are handled explicitly: missing timestamps are inserted and, with missing values,
filled by linear interpolation in time; how many were filled is reported, and `fill="error"`
refuses a series with gaps instead.

Values must be finite numbers that a float32 can hold (the models compute in float32): `inf`,
`-inf` or `1e308` are refused, naming the row. The grid of regular times is sized before it is
built: gaps that would need more than 100 times as many points as there are rows, or more than
`$TOOLKIT_MAX_SERIES_POINTS` points in all (default 10 million: 80 MB a column), are refused, since
such a series is not regular at its median step (four rows a second apart and then a year-long gap
would need 31.5 million points).
"""

import dataclasses
import os

import numpy as np

from toolkit.errors import ToolkitError

FILLS = ("interpolate", "error")
MAX_POINTS = "TOOLKIT_MAX_SERIES_POINTS"
DEFAULT_MAX_POINTS = 10_000_000
POINTS_PER_ROW = 100  # at most this many grid points per row given: 99% of the values filled in
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class Series:
    """Regularly spaced values with their timestamps (numpy datetime64) and the spacing."""

    times: np.ndarray
    values: np.ndarray
    step: np.timedelta64
    filled: int  # values that were missing and interpolated
    name: str

    def __len__(self):
        return len(self.values)

    def future_times(self, steps):
        return self.times[-1] + self.step * np.arange(1, steps + 1)


def season_length(step):
    """The usual seasonal period for a spacing: 24 hours, 7 days, 52 weeks, 12 months, 4 quarters."""
    days = step / np.timedelta64(1, "D")
    for period, length in ((1 / 24, 24), (1, 7), (7, 52), (30.4, 12), (91.3, 4)):
        if abs(days - period) <= 0.15 * period:
            return length
    return 1


CO2_FILE = "co2_mauna_loa.csv"  # beside this module, in the package: its header says where it comes from


def co2():
    """Weekly atmospheric CO2 at Mauna Loa, 1958-2001 (ppm), from the Scripps flask samples (59 weeks missing).

    The series ships with the package (`toolkit/data/co2_mauna_loa.csv`, 39 kB, public domain),
    copied from statsmodels, which would otherwise be installed (with SciPy, about 180 MB) for
    this one table.
    """
    import importlib.resources

    import pandas as pd

    with importlib.resources.files("toolkit.data").joinpath(CO2_FILE).open("r", encoding="utf-8") as f:
        frame = pd.read_csv(f, comment="#", parse_dates=["date"])
    return regularise(frame["date"].to_numpy(), frame["co2"].to_numpy(dtype="float64"), "co2")


def read_csv(path, column=None, time_column=None, fill="interpolate"):
    """The series in `column` of a CSV, indexed by `time_column` (default: the first column that parses as dates)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ToolkitError(f"{path}: no such file") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ToolkitError(f"{path}: not a readable CSV file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if frame.empty:
        raise ToolkitError(f"{path}: no rows")
    if time_column is None:
        time_column = next((c for c in frame.columns if _parses_as_dates(frame[c])), None)
        if time_column is None:
            raise ToolkitError(f"{path}: no column of dates or times; name one with --time-column")
    if time_column not in frame.columns:
        raise ToolkitError(f"{path}: no column {time_column!r} (columns: {', '.join(map(str, frame.columns))})")
    if column is None:
        numeric = [c for c in frame.columns if c != time_column]
        if len(numeric) != 1:
            raise ToolkitError(f"{path}: name the value column with --column (columns: {', '.join(map(str, numeric))})")
        column = numeric[0]
    if column not in frame.columns:
        raise ToolkitError(f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})")
    try:
        times = pd.to_datetime(frame[time_column], format="mixed").to_numpy()
    except (ValueError, TypeError):
        raise ToolkitError(f"{path}: column {time_column!r} does not hold dates or times") from None
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ToolkitError(f"{path}: column {column!r} is not numeric: {frame[column].iloc[row]!r} on data row {row + 1}")
    return regularise(times, values.to_numpy(dtype="float64"), str(column), fill=fill, source=str(path))


def _parses_as_dates(column):
    import pandas as pd

    if column.dtype.kind in "fiub":
        return False
    try:
        pd.to_datetime(column.head(20), format="mixed")
        return True
    except (ValueError, TypeError):
        return False


def regularise(times, values, name, fill="interpolate", source="the series", max_points=None):
    """Checks order, duplicates and values; inserts missing timestamps, fills missing values.

    `max_points` bounds the regular grid (default: `$TOOLKIT_MAX_SERIES_POINTS`, or 10 million),
    as does 100 points per row given; a series that needs more is refused before anything is allocated.
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {list(FILLS)}. Received: fill={fill!r}")
    times = np.asarray(times, dtype="datetime64[ns]")
    values = np.asarray(values, dtype="float64")
    if len(times) < 3:
        raise ToolkitError(f"{source}: {len(times)} rows are too few for a time series")
    if np.isnat(times).any():
        raise ToolkitError(f"{source}: empty time on data row {int(np.flatnonzero(np.isnat(times))[0]) + 1}")
    huge = np.abs(values) > FLOAT32_MAX  # inf, -inf, and finite values a float32 cannot hold (nan: missing)
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        value = float(values[row])
        problem = ("not finite" if np.isinf(value)
                   else f"too large for float32, which the models compute in (|x| <= {FLOAT32_MAX:.3g})")
        raise ToolkitError(f"{source}: the value {value:g} on data row {row + 1} is {problem}")
    nanoseconds = times.astype("int64")
    later = nanoseconds[1:] > nanoseconds[:-1]  # compared, not subtracted: a difference can overflow
    if (nanoseconds[1:] == nanoseconds[:-1]).any():
        row = int(np.flatnonzero(nanoseconds[1:] == nanoseconds[:-1])[0]) + 2
        raise ToolkitError(f"{source}: duplicated time {times[row - 1]} on data row {row}")
    if not later.all():
        row = int(np.flatnonzero(~later)[0]) + 2
        raise ToolkitError(f"{source}: the time column is not sorted (data row {row} goes back in time)")
    spacing = np.diff(times)
    spacing[spacing <= np.timedelta64(0)] = np.timedelta64(np.iinfo("int64").max, "ns")  # > 292 years: overflowed
    step = np.median(spacing)
    step_ns = int(step / np.timedelta64(1, "ns"))
    if step_ns <= 0:
        raise ToolkitError(f"{source}: the times are not regularly spaced (most rows are centuries apart)")
    # The grid's size is known before anything is built: (last - first) / step + 1 points (Python integers).
    limit = min(_max_points(max_points), POINTS_PER_ROW * len(times))
    estimate = (int(nanoseconds[-1]) - int(nanoseconds[0])) / step_ns + 1
    if estimate > limit + 1:
        raise _too_many_points(source, estimate, step, len(times), limit, max_points)
    quotient, remainder = np.divmod(nanoseconds, step_ns)  # each row's place on the grid, without overflow
    position = (quotient - quotient[0]) + np.round((remainder - remainder[0]) / step_ns).astype("int64")
    if (np.diff(position) == 0).any():
        raise ToolkitError(f"{source}: the times are not regularly spaced (median step {describe_step(step)})")
    points = int(position[-1]) + 1
    if points > limit:
        raise _too_many_points(source, points, step, len(times), limit, max_points)
    blank = np.isnan(values)
    if fill == "error" and (points > len(times) or blank.any()):  # counted without building the grid
        firsts = [position[i] + 1 for i in np.flatnonzero(np.diff(position) > 1)[:1]]
        firsts += [position[i] for i in np.flatnonzero(blank)[:1]]
        raise ToolkitError(f"{source}: {points - len(times) + int(blank.sum())} missing values "
                           f"(first at {times[0] + step * min(firsts)})")
    full = times[0] + step * np.arange(points)
    series = np.full(points, np.nan)
    series[position] = values
    missing = np.isnan(series)
    if missing.any():
        known = np.flatnonzero(~missing)
        if len(known) < 2:
            raise ToolkitError(f"{source}: fewer than two values")
        series[missing] = np.interp(np.flatnonzero(missing), known, series[known])
    return Series(full, series, step, int(missing.sum()), name)


def _max_points(value):
    if value is not None:
        return int(value)
    text = os.environ.get(MAX_POINTS, "").strip()
    if not text:
        return DEFAULT_MAX_POINTS
    try:
        number = int(float(text))
    except (ValueError, OverflowError):
        number = 0
    if number < 1:
        raise ToolkitError(f"{MAX_POINTS} must be a positive number of points. Received: {text!r}")
    return number


def _too_many_points(source, points, step, rows, limit, max_points):
    return ToolkitError(f"{source}: filling its gaps would take {round(points):,} points at its median step "
                        f"({describe_step(step)}) for {rows:,} rows; the limit is {limit:,} ({POINTS_PER_ROW} per row, "
                        f"at most {_max_points(max_points):,}: {MAX_POINTS}); are its times regular?")


def describe_step(step):
    """`1 second`, `7 days`, `1 nanosecond`: a step in the largest unit that divides it."""
    nanoseconds = int(step / np.timedelta64(1, "ns"))
    for unit, size in (("day", 86400 * 10**9), ("hour", 3600 * 10**9), ("minute", 60 * 10**9), ("second", 10**9),
                       ("millisecond", 10**6), ("microsecond", 10**3), ("nanosecond", 1)):
        if nanoseconds % size == 0:
            count = nanoseconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return str(step)
