"""Forecast CSVs under hostile use: grids that gaps would blow up, non-finite values, lazy windows (issue 12)."""

import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import one_error_line
from toolkit.data import series
from toolkit.errors import ToolkitError
from toolkit.models.forecaster import scale_targets, scale_windows
from toolkit.tasks.forecasting import make_windows


def write_rows(path, rows, header="date,co2"):
    path.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def weekly(path, weeks=200, last=None):
    """A weekly series like the shipped model's (CO2 in ppm), its last value replaced by `last`."""
    times = np.datetime64("1990-01-07") + 7 * np.arange(weeks)
    values = [repr(float(350 + 0.03 * k + 3 * np.sin(2 * np.pi * k / 52))) for k in range(weeks)]
    if last is not None:
        values[-1] = last
    return write_rows(path, zip(times, values))


# === The regular grid is sized before it is built ===

def test_a_year_long_gap_after_rows_a_second_apart_is_refused_without_allocating(tmp_path):
    start = np.datetime64("2020-01-01T00:00:00")
    rows = [(start + np.timedelta64(s, "s"), 400 + s) for s in range(4)] + [(np.datetime64("2021-01-01T00:00:00"), 404)]
    path = write_rows(tmp_path / "gap.csv", rows)
    tracemalloc.start()
    try:
        with pytest.raises(ToolkitError, match=r"would take 31,622,40\d points at its median step \(1 second\)"):
            series.read_csv(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, f"{peak / 2**20:.0f} MB allocated to refuse it"  # the grid would be 500 MB


def test_a_nanosecond_series_is_read_and_a_gap_in_it_is_refused(tmp_path):
    start = np.datetime64("2020-01-01T00:00:00.000000000")
    rows = [(start + np.timedelta64(n, "ns"), 400 + 0.01 * n) for n in range(200)]
    data = series.read_csv(write_rows(tmp_path / "ns.csv", rows))
    assert len(data) == 200 and data.step == np.timedelta64(1, "ns") and data.filled == 0
    rows.append((start + np.timedelta64(10, "ms"), 402))  # ten million nanoseconds later
    with pytest.raises(ToolkitError, match=r"10,000,00\d points at its median step \(1 nanosecond\)"):
        series.read_csv(write_rows(tmp_path / "ns_gap.csv", rows))


def test_the_grid_limit_comes_from_the_environment(tmp_path, monkeypatch):
    rows = [(np.datetime64("2020-01-01") + d, d) for d in range(1000) if not 100 <= d < 150]
    path = write_rows(tmp_path / "daily.csv", rows)
    assert len(series.read_csv(path)) == 1000  # 50 days filled in
    monkeypatch.setenv("TOOLKIT_MAX_SERIES_POINTS", "999")
    with pytest.raises(ToolkitError, match="1,000 points .* the limit is 999 .*TOOLKIT_MAX_SERIES_POINTS"):
        series.read_csv(path)
    monkeypatch.setenv("TOOLKIT_MAX_SERIES_POINTS", "many")
    with pytest.raises(ToolkitError, match="TOOLKIT_MAX_SERIES_POINTS must be a positive number"):
        series.read_csv(path)


def test_gaps_may_fill_at_most_100_points_a_row(tmp_path):
    rows = [(np.datetime64("2020-01-01") + d, d) for d in (0, 1, 2, 3, 600)]  # 601 points for 5 rows
    with pytest.raises(ToolkitError, match="601 points .* for 5 rows; the limit is 500"):
        series.read_csv(write_rows(tmp_path / "sparse.csv", rows))
    with pytest.raises(ToolkitError, match="601 points"):  # counted, not built, when gaps are refused anyway
        series.read_csv(tmp_path / "sparse.csv", fill="error")


def test_centuries_of_yearly_values_do_not_overflow(tmp_path):
    rows = [(f"{year}-01-01", year) for year in range(1700, 2001)]  # 300 years: more nanoseconds than an int64 holds
    data = series.read_csv(write_rows(tmp_path / "yearly.csv", rows, header="year,value"))
    assert len(data) == 301 and data.filled == 0 and data.values[-1] == 2000


# === Values must be finite; so must forecasts ===

@pytest.mark.parametrize("last, problem", [("inf", "inf on data row 200 is not finite"),
                                           ("-inf", "-inf on data row 200 is not finite"),
                                           ("1e308", "1e\\+308 on data row 200 is too large for float32")])
def test_non_finite_values_are_refused_naming_the_row(tmp_path, last, problem):
    with pytest.raises(ToolkitError, match=problem):
        series.read_csv(weekly(tmp_path / "s.csv", last=last))


@pytest.mark.parametrize("last", ["inf", "1e308"])
def test_forecast_of_a_non_finite_series_is_an_error_not_nan(tmp_path, last):
    result = CliRunner().invoke(toolkit, ["forecast", str(weekly(tmp_path / "s.csv", last=last)), "--json"])
    assert "on data row 200" in one_error_line(result)
    assert result.stdout == ""


def test_a_non_finite_forecast_is_an_error_never_printed(tmp_path, monkeypatch):
    from toolkit.tasks.forecasting import ForecastAnswers

    def predict_windows(self, windows, batch_size=4096):
        return np.full((len(windows), self.horizon), np.nan), np.full((len(windows), self.horizon), np.inf)

    monkeypatch.setattr(ForecastAnswers, "predict_windows", predict_windows)
    result = CliRunner().invoke(toolkit, ["forecast", str(weekly(tmp_path / "s.csv")), "--json"])
    assert "not a finite number" in one_error_line(result)
    assert result.stdout == ""


def test_a_series_at_another_step_names_both_steps(tmp_path):
    start = np.datetime64("2020-01-01T00:00:00.000000000")
    path = write_rows(tmp_path / "ns.csv", [(start + np.timedelta64(n, "ns"), 400.0) for n in range(200)])
    message = one_error_line(CliRunner().invoke(toolkit, ["forecast", str(path)]))
    assert "spaced 1 nanosecond apart, but the model was trained on steps of 7 days" in message


# === Training windows are cut lazily from the series ===

def test_windows_are_views_of_the_series_not_copies():
    values = np.arange(1000, dtype=float)
    windows = make_windows(values, window=50, horizon=10, first_target=50, last_target=1000)
    assert len(windows.ends) == 941
    assert np.shares_memory(windows.inputs, values) and np.shares_memory(windows.targets, values)
    np.testing.assert_array_equal(windows.inputs[3], values[3:53])
    np.testing.assert_array_equal(windows.targets[3], values[53:63])


def test_window_batches_hold_the_scaled_windows_each_once_an_epoch():
    from toolkit.tasks.forecasting import window_batches

    values = np.cumsum(np.random.default_rng(0).normal(size=300))
    windows = make_windows(values, window=8, horizon=3, first_target=8, last_target=250)
    inputs = scale_windows(np.asarray(windows.inputs), 2.0).astype("float32")  # the one scaling definition
    targets = scale_targets(np.asarray(windows.inputs), np.asarray(windows.targets), 2.0).astype("float32")

    def epoch(dataset):
        batches = list(dataset.as_numpy_iterator())
        assert all(len(x) <= 16 for x, _ in batches)
        return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])

    x, y = epoch(window_batches(values, windows, 2.0, 16))
    np.testing.assert_array_equal(x, inputs)
    np.testing.assert_array_equal(y, targets)
    shuffled = window_batches(values, windows, 2.0, 16, shuffle=True, seed=1)
    assert int(shuffled.cardinality()) == 15
    first, second = epoch(shuffled), epoch(shuffled)
    assert not np.array_equal(first[0], second[0])  # reshuffled each epoch
    for x, y in (first, second):  # every window exactly once, each with its own targets
        order, expected = np.argsort(x[:, -2, 0], kind="stable"), np.argsort(inputs[:, -2, 0], kind="stable")
        np.testing.assert_array_equal(x[order], inputs[expected])
        np.testing.assert_array_equal(y[order], targets[expected])


def test_splitting_a_long_series_allocates_no_windows():
    from toolkit.tasks.forecasting import TrainConfig, split_windows

    values = np.arange(200_000, dtype=float)
    tracemalloc.start()
    try:
        splits = split_windows(values, TrainConfig())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20, f"{peak / 2**20:.0f} MB allocated"  # copies would be 200,000 x 156 x 8 bytes: 250 MB
    assert all(np.shares_memory(split.inputs, values) for split in splits)


def test_the_scale_is_the_spread_of_the_changes_computed_a_chunk_at_a_time():
    from toolkit.tasks.forecasting import change_scale

    values = np.cumsum(np.random.default_rng(0).normal(size=3000))
    windows = make_windows(values, window=20, horizon=5, first_target=20, last_target=3000)
    changes = np.asarray(windows.targets) - np.asarray(windows.inputs)[:, -1:]
    assert change_scale(windows, chunk=7) == pytest.approx(float(changes.std()), rel=1e-12)


# === More on values and strict JSON ===

def test_blank_and_nan_values_are_still_missing_values(tmp_path):
    data = series.read_csv(weekly(tmp_path / "s.csv", last="nan"))
    assert data.filled == 1 and np.isfinite(data.values).all()


def test_forecast_json_is_strict_and_evaluate_refuses_non_finite_forecasts(tmp_path, monkeypatch):
    import json

    from toolkit.serving import models_dir
    from toolkit.tasks.forecasting import ForecastAnswers, evaluate

    result = CliRunner().invoke(toolkit, ["forecast", str(weekly(tmp_path / "s.csv")), "--json", "--steps", "3"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
            for line in result.stdout.splitlines()]
    assert len(rows) == 3 and all(np.isfinite(r["forecast"]) for r in rows)

    def predict_windows(self, windows, batch_size=4096):
        return np.full((len(windows), self.horizon), np.nan), None

    monkeypatch.setattr(ForecastAnswers, "predict_windows", predict_windows)
    with pytest.raises(ToolkitError, match="forecasts of co2 are not finite numbers"):
        evaluate(models_dir() / "forecast_co2")
