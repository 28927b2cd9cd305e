"""Forecasting: series reading and its refusals, windows and baselines, training, export, the command line."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import toolkit
from tests.helpers import one_error_line
from toolkit.data import series
from toolkit.errors import ToolkitError
from toolkit.tasks.forecasting import Windows, baselines, make_windows

START, DAYS = np.datetime64("2020-01-01"), 260


def write_series(path, days=DAYS, missing=(), shuffle=False, duplicate=False):
    """A daily series: trend + weekly cycle + noise; `missing` rows are left out, or their value blank."""
    rng = np.random.default_rng(0)
    t = np.arange(days)
    values = 10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.1, days)
    dates = START + t
    rows = [f"{d},{v:.4f}" for d, v in zip(dates, values)]
    for i in missing:
        rows[i] = f"{dates[i]}," if i % 2 else None
    rows = [r for r in rows if r is not None]
    if shuffle:
        rows[5], rows[6] = rows[6], rows[5]
    if duplicate:
        rows.insert(10, rows[9])
    path.write_text("day,sales\n" + "\n".join(rows) + "\n")
    return path


def test_gaps_are_filled_and_reported(tmp_path):
    data = series.read_csv(write_series(tmp_path / "s.csv", missing=(20, 21, 40)))
    assert len(data) == DAYS and data.filled == 3  # a row left out is a gap in time, filled as a blank one
    assert data.step == np.timedelta64(1, "D") and series.season_length(data.step) == 7
    assert not np.isnan(data.values).any()
    assert data.values[20] == pytest.approx((data.values[19] * 2 + data.values[22]) / 3, abs=1e-6)
    with pytest.raises(ToolkitError, match="3 missing values"):
        series.read_csv(tmp_path / "s.csv", fill="error")


@pytest.mark.parametrize("case,message", [
    ("unsorted", "not sorted"), ("duplicate", "duplicated time"), ("column", "no column 'price'"),
    ("text", "not numeric: .12 kg. on data row 3"), ("few", "too few"), ("notcsv", "not a readable CSV"),
    ("nodates", "no column of dates"),
])
def test_bad_series_are_refused(tmp_path, case, message):
    path = tmp_path / "s.csv"
    if case in ("unsorted", "duplicate"):
        write_series(path, shuffle=case == "unsorted", duplicate=case == "duplicate")
    elif case == "text":
        path.write_text("day,sales\n2020-01-01,1\n2020-01-02,2\n2020-01-03,12 kg\n")
    elif case == "few":
        path.write_text("day,sales\n2020-01-01,1\n")
    elif case == "notcsv":
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
    elif case == "nodates":
        path.write_text("a,b\n1,2\n3,4\n5,6\n")
    else:
        write_series(path)
    with pytest.raises(ToolkitError, match=message):
        series.read_csv(path, column="price" if case == "column" else None)


def test_windows_and_baselines():
    values = np.arange(20, dtype=float)
    windows = make_windows(values, window=4, horizon=2, first_target=10, last_target=20)
    assert windows.ends.tolist() == list(range(9, 18))
    np.testing.assert_array_equal(windows.inputs[0], [6, 7, 8, 9])
    np.testing.assert_array_equal(windows.targets[0], [10, 11])
    report = baselines(values, windows, season=3)
    assert report["last_value"]["mae_by_horizon"] == [1.0, 2.0]  # y_t+h - y_t = h on a ramp
    assert report["seasonal_naive"]["mae_by_horizon"] == [3.0, 3.0]  # one season (3 steps) back
    seasonal = Windows(np.array([[0.0, 5, 1, 0, 5, 1]]), np.array([[0.0, 5]]), np.array([5]))
    assert baselines(np.array([0.0, 5, 1, 0, 5, 1, 0, 5]), seasonal, 3)["seasonal_naive"]["mae"] == 0.0


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    from toolkit.tasks.forecasting import TrainConfig, export_run, train

    root = tmp_path_factory.mktemp("forecast")
    csv = write_series(root / "s.csv", missing=(30,))
    config = TrainConfig(csv=str(csv), window=14, horizon=7, units=16, epochs=15, patience=15,
                         learning_rate=0.01, batch_size=8)
    results = train(config, root / "run")
    export_run(root / "run", root / "models", "sales", 1)
    return root, results


def test_training_beats_the_naive_forecasts(forecaster):
    _, results = forecaster
    test = results["test"]
    assert test["model"]["mae"] < 0.75 * test["seasonal_naive"]["mae"], test  # by a margin: about 0.15 vs 0.35
    assert test["model"]["mae"] < 0.75 * test["last_value"]["mae"], test
    assert 0.5 < test["interval_95_coverage"] <= 1.0
    assert results["season"] == 7 and results["filled_values"] == 1


def test_forecast_command(forecaster):
    root, _ = forecaster
    runner = CliRunner()
    result = runner.invoke(toolkit, ["forecast", str(root / "s.csv"), "--model", str(root / "models" / "sales"),
                                     "--steps", "10", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["time"] for r in rows[:2]] == [str(START + DAYS), str(START + DAYS + 1)]  # after the series' last day
    assert all("lower_95" in r for r in rows[:7]) and not any("lower_95" in r for r in rows[7:])
    assert all(r["lower_95"] < r["forecast"] < r["upper_95"] for r in rows[:7])
    assert "forecast from forecasts" in result.stderr
    # the model reads a trend + weekly cycle: its forecasts continue the cycle, not a flat line
    values = [r["forecast"] for r in rows[:7]]
    assert max(values) - min(values) > 1.0


def test_forecast_refusals(forecaster, tmp_path, tiny_model):
    root, _ = forecaster
    model = str(root / "models" / "sales")
    runner = CliRunner()
    short = write_series(tmp_path / "short.csv", days=5)
    result = runner.invoke(toolkit, ["forecast", str(short), "--model", model])
    assert "needs the last 14" in one_error_line(result)
    result = runner.invoke(toolkit, ["forecast", str(root / "s.csv"), "--column", "price", "--model", model])
    assert "no column 'price'" in one_error_line(result)
    result = runner.invoke(toolkit, ["forecast", str(tmp_path / "missing.csv"), "--model", model])
    assert "no such file" in one_error_line(result)
    result = runner.invoke(toolkit, ["forecast", str(root / "s.csv"), "--model", str(tiny_model)])
    assert "holds a 'text_classifier' model" in one_error_line(result)


def test_too_short_for_training(tmp_path):
    from toolkit.tasks.forecasting import TrainConfig, train

    path = write_series(tmp_path / "s.csv", days=40)
    with pytest.raises(ToolkitError, match="too few for one training window"):
        train(TrainConfig(csv=str(path), window=30, horizon=7), tmp_path / "run")


def test_the_co2_series_ships_with_the_package_and_needs_no_statsmodels():
    """The default series is read from toolkit/data/co2_mauna_loa.csv (package data), not from statsmodels."""
    import subprocess
    import sys

    code = ("import sys; from toolkit.data import series; s = series.co2(); "
            "print(len(s.values), s.filled, str(s.times[0])[:10], str(s.times[-1])[:10], s.values.min() > 300, "
            "s.values.max() < 380, 'statsmodels' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["2284", "59", "1958-03-29", "2001-12-29", "True", "True", "False"]
