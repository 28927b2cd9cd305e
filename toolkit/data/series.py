"""Univariate time series: a CSV's date/time and value columns, or the Mauna Loa CO2 series.

A series must be regular for windows to mean anything: its time column must be sorted and
free of duplicates (refused otherwise, naming the row), and its step is the median spacing.
Gaps are handled explicitly: missing timestamps are inserted and, with missing values,
filled by linear interpolation in time; how many were filled is reported, and `fill="error"`
refuses a series with gaps instead.
"""

import dataclasses

import numpy as np

from toolkit.errors import ToolkitError

FILLS = ("interpolate", "error")


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


def co2():
    """Weekly atmospheric CO2 at Mauna Loa, 1958-2001 (ppm), as statsmodels ships it (59 weeks missing)."""
    from statsmodels.datasets import co2 as dataset

    frame = dataset.load_pandas().data
    return regularise(frame.index.to_numpy(), frame["co2"].to_numpy(dtype="float64"), "co2")


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


def regularise(times, values, name, fill="interpolate", source="the series"):
    """Checks order and duplicates, inserts missing timestamps, fills missing values."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {list(FILLS)}. Received: fill={fill!r}")
    times = np.asarray(times, dtype="datetime64[ns]")
    if len(times) < 3:
        raise ToolkitError(f"{source}: {len(times)} rows are too few for a time series")
    if np.isnat(times).any():
        raise ToolkitError(f"{source}: empty time on data row {int(np.flatnonzero(np.isnat(times))[0]) + 1}")
    spacing = np.diff(times)
    if (spacing == np.timedelta64(0)).any():
        row = int(np.flatnonzero(spacing == np.timedelta64(0))[0]) + 2
        raise ToolkitError(f"{source}: duplicated time {times[row - 1]} on data row {row}")
    if (spacing < np.timedelta64(0)).any():
        row = int(np.flatnonzero(spacing < np.timedelta64(0))[0]) + 2
        raise ToolkitError(f"{source}: the time column is not sorted (data row {row} goes back in time)")
    step = np.median(spacing)
    grid = times[0] + step * np.round((times - times[0]) / step).astype("int64")
    if len(np.unique(grid)) != len(grid):
        raise ToolkitError(f"{source}: the times are not regularly spaced (median step {step})")
    full = times[0] + step * np.arange(int(round((times[-1] - times[0]) / step)) + 1)
    series = np.full(len(full), np.nan)
    series[np.round((grid - times[0]) / step).astype("int64")] = values
    missing = np.isnan(series)
    if missing.any():
        if fill == "error":
            raise ToolkitError(f"{source}: {int(missing.sum())} missing values (first at {full[missing][0]})")
        known = np.flatnonzero(~missing)
        if len(known) < 2:
            raise ToolkitError(f"{source}: fewer than two values")
        series[missing] = np.interp(np.flatnonzero(missing), known, series[known])
    return Series(full, series, step, int(missing.sum()), name)
