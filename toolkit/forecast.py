"""Sequential regression end to end: a univariate series -> windows -> RNN -> SavedModel.

Each example is a window of the past `window` values and the next `horizon` values. The
series is split by time (train, then validation, then test: the model never sees the future
it is scored on); a window belongs to the split its targets fall in. Values are scaled per
window: the window's last value is subtracted from inputs and targets, which are divided by
a scale fitted on the training split only (the spread of its horizon-step changes). The
model so forecasts changes, which carries over to levels never seen in training, such as a
trending series' future.

Baselines, on the very same test windows: the last value (y_t+h = y_t), and the seasonal
naive forecast (y_t+h = y_t+h-m, one season of m steps back).
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.io import write_json

KIND = "forecaster"
LOSSES = ("gaussian", "mse")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a forecasting run; stored as the run's config.json."""

    csv: str = None  # None: the Mauna Loa CO2 series shipped with statsmodels
    column: str = None
    time_column: str = None
    fill: str = "interpolate"  # missing values: interpolate linearly in time, or "error"
    window: int = 104
    horizon: int = 52
    season: int = None  # None: from the spacing (52 for weekly data, 12 for monthly, ...)
    cell: str = "lstm"
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    activation: str = "tanh"
    dropout: float = 0.0
    loss: str = "gaussian"  # learned variance (Gaussian NLL), or "mse" (fixed variance)
    l2: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    clip_norm: float = 1.0
    batch_size: int = 32
    epochs: int = 100
    patience: int = 15
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 1337


def load_series(config):
    from toolkit.data import series

    if config.csv:
        return series.read_csv(config.csv, config.column, config.time_column, fill=config.fill)
    if config.column not in (None, "co2"):
        raise ToolkitError(f"the CO2 series has one column, 'co2'. Received: --column {config.column}")
    return series.co2()


@dataclasses.dataclass(frozen=True)
class Windows:
    """`inputs [n, window]`, `targets [n, horizon]`, and `ends [n]`: the index of each window's last value."""

    inputs: np.ndarray
    targets: np.ndarray
    ends: np.ndarray


def make_windows(values, window, horizon, first_target, last_target):
    """The windows whose targets all lie in `values[first_target:last_target]`."""
    ends = np.arange(max(window - 1, first_target - 1), last_target - horizon)
    if len(ends) == 0:
        return Windows(np.zeros((0, window)), np.zeros((0, horizon)), ends)
    inputs = np.stack([values[e - window + 1:e + 1] for e in ends])
    targets = np.stack([values[e + 1:e + 1 + horizon] for e in ends])
    return Windows(inputs, targets, ends)


def split_windows(values, config):
    """(train, validation, test) windows of a chronological split."""
    n = len(values)
    test_start = n - int(round(n * config.test_fraction))
    validation_start = test_start - int(round(n * config.validation_fraction))
    need = config.window + config.horizon
    if validation_start < need:
        raise ToolkitError(f"the series has {n} values: too few for one training window of {config.window} "
                           f"past + {config.horizon} future values before the validation and test parts")
    splits = (make_windows(values, config.window, config.horizon, config.window, validation_start),
              make_windows(values, config.window, config.horizon, validation_start, test_start),
              make_windows(values, config.window, config.horizon, test_start, n))
    for name, split in zip(("validation", "test"), splits[1:]):
        if len(split.ends) == 0:
            raise ToolkitError(f"the {name} part of the series ({n} values) is shorter than the horizon "
                               f"({config.horizon}): use a longer series or a shorter --horizon")
    return splits


def baselines(values, windows, season):
    """Test MAE of the last-value and the seasonal-naive forecasts on `windows`."""
    horizon = windows.targets.shape[1]
    steps = np.arange(1, horizon + 1)
    last = np.repeat(windows.inputs[:, -1:], horizon, axis=1)
    back = season * np.ceil(steps / season).astype(int)  # one season back (more for h > m)
    seasonal = values[windows.ends[:, None] + steps[None, :] - back[None, :]]
    return {"last_value": _mae(last, windows.targets), "seasonal_naive": _mae(seasonal, windows.targets)}


def _mae(predictions, targets):
    errors = np.abs(predictions - targets)
    return {"mae": float(errors.mean()), "mae_by_horizon": [float(e) for e in errors.mean(axis=0)]}


def scaled(windows, scale):
    last = windows.inputs[:, -1:]
    return ((windows.inputs - last) / scale)[..., None].astype("float32"), ((windows.targets - last) / scale).astype("float32")


def train(config, run_dir):
    """Trains a forecaster in `run_dir` (resuming it if interrupted) and scores it against the baselines."""
    import keras

    from toolkit import training
    from toolkit.data import series as series_lib
    from toolkit.data.feeding import array_batches
    from toolkit.losses import GaussianNLL, mean_absolute_error_of_mean
    from toolkit.models.forecaster import build_forecaster

    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}. Received: loss={config.loss!r}")
    run_dir = Path(run_dir)
    settings = dataclasses.asdict(config)
    training.check_same_settings(run_dir, settings)
    keras.utils.set_random_seed(config.seed)
    data = load_series(config)
    season = config.season or series_lib.season_length(data.step)
    train_w, validation_w, test_w = split_windows(data.values, config)
    changes = train_w.targets - train_w.inputs[:, -1:]
    scale = float(changes.std()) or 1.0
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", {
        "kind": KIND, "series": data.name, "source": config.csv or "statsmodels.datasets.co2",
        "step_seconds": float(data.step / np.timedelta64(1, "s")), "season": season, "scale": scale,
        "values": len(data), "filled": data.filled, "train": settings, "command": sys.argv})

    gaussian = config.loss == "gaussian"
    model = build_forecaster(config.window, config.horizon, cell=config.cell, units=config.units,
                             num_layers=config.num_layers, bidirectional=config.bidirectional,
                             activation=config.activation, dropout=config.dropout, l2=config.l2, gaussian=gaussian)
    model.compile(optimizer=training.make_optimizer(config.optimizer, config.learning_rate, config.clip_norm),
                  loss=GaussianNLL() if gaussian else "mse",
                  metrics=[mean_absolute_error_of_mean if gaussian else "mae"])
    x_train, y_train = scaled(train_w, scale)
    x_val, y_val = scaled(validation_w, scale)
    train_batches = array_batches(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed)
    validation_batches = array_batches(x_val, y_val, config.batch_size)
    model, history = training.fit(model, train_batches, validation_batches, run_dir, epochs=config.epochs,
                                  patience=config.patience)

    results = {"parameters": model.count_params(), "epochs_trained": len(history),
               "best_epoch": training.best_epoch(history), "train_seconds": training.training_seconds(history),
               "windows": {"train": len(train_w.ends), "validation": len(validation_w.ends), "test": len(test_w.ends)},
               "season": season, "filled_values": data.filled}
    for name, windows in (("validation", validation_w), ("test", test_w)):
        mean, stddev = predict_windows(model, windows.inputs, scale, gaussian)
        report = {"model": _mae(mean, windows.targets), **baselines(data.values, windows, season)}
        if stddev is not None:
            inside = np.abs(windows.targets - mean) <= 1.96 * stddev
            report["interval_95_coverage"] = float(inside.mean())
        results[name] = report
    write_json(run_dir / "metrics.json", results)
    return results


def predict_windows(model, inputs, scale, gaussian):
    """(means, standard deviations or None) in the series' units, for raw windows `[n, window]`."""
    import keras

    last = inputs[:, -1:]
    x = ((inputs - last) / scale)[..., None].astype("float32")
    outputs = keras.ops.convert_to_numpy(model.predict(x, verbose=0, batch_size=256))
    horizon = outputs.shape[1] // 2 if gaussian else outputs.shape[1]
    mean = outputs[:, :horizon] * scale + last
    if not gaussian:
        return mean, None
    return mean, np.exp(0.5 * np.clip(outputs[:, horizon:], -12, 12)) * scale


def forecaster_archive(model, scale, gaussian):
    """`serving_default`: raw windows `[batch, window]` -> `{"forecast": [batch, horizon]}` (+ `"stddev"`)."""
    import keras
    import tensorflow as tf

    window = model.input_shape[1]
    archive = keras.export.ExportArchive()

    def serve(values):
        last = values[:, -1:]
        outputs = model(tf.expand_dims((values - last) / scale, -1), training=False)
        if not gaussian:
            return {"forecast": outputs * scale + last}
        mean, log_variance = tf.split(outputs, 2, axis=-1)
        return {"forecast": mean * scale + last,
                "stddev": tf.exp(0.5 * tf.clip_by_value(log_variance, -12.0, 12.0)) * scale}

    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec(shape=(None, window), dtype=tf.float32, name="window")])
    return archive


def export_run(run_dir, to, name, version):
    """Exports the best model of a forecasting run as `TO/NAME/VERSION`."""
    import keras

    import toolkit.losses  # noqa: F401  (registers the loss and metric for loading)
    from toolkit import export, training

    run_dir = Path(run_dir)
    config = training.read_run(run_dir, KIND)
    model = keras.saving.load_model(run_dir / training.BEST_MODEL, compile=False)
    gaussian = config["train"]["loss"] == "gaussian"
    metrics = config["metrics"]
    metadata = {"kind": KIND, "series": config["series"], "window": config["train"]["window"],
                "horizon": config["train"]["horizon"], "step_seconds": config["step_seconds"],
                "season": config["season"], "gaussian": gaussian, "parameters": model.count_params(),
                "train": config["train"], "metrics": metrics}
    return export.write_saved_model(forecaster_archive(model, config["scale"], gaussian), to, name, version, metadata)


def forecast(model_path, series, steps):
    """Forecasts `steps` values after the end of `series` with an exported forecaster.

    Up to the model's horizon the forecast is direct (with a 95% interval for Gaussian models);
    beyond it, forecasts are fed back as inputs (no interval there).
    """
    from toolkit.predictor import load_saved_model

    signatures, metadata, model_dir = load_saved_model(model_path, KIND)
    import tensorflow as tf

    if steps < 1:
        raise ToolkitError(f"--steps must be at least 1. Received: {steps}")
    window, horizon = metadata["window"], metadata["horizon"]
    step = np.timedelta64(int(metadata["step_seconds"] * 1e9), "ns")
    if abs((series.step - step) / step) > 0.15:
        raise ToolkitError(f"the series is spaced {series.step.astype('timedelta64[s]')} apart, "
                           f"but the model was trained on steps of {step.astype('timedelta64[s]')}")
    if len(series) < window:
        raise ToolkitError(f"the series has {len(series)} values; the model needs the last {window}")
    serve = signatures["serving_default"]
    history = list(series.values[-window:])
    means, stddevs = [], []
    while len(means) < steps:
        outputs = serve(window=tf.constant([history[-window:]], tf.float32))
        mean = outputs["forecast"].numpy()[0]
        stddev = outputs["stddev"].numpy()[0] if "stddev" in outputs and not means else [None] * horizon
        means += list(mean)
        stddevs += list(stddev)
        history += list(mean)
    times = series.future_times(steps)
    return [{"time": str(t)[:19].replace("T00:00:00", ""), "forecast": round(float(m), 4),
             **({"lower_95": round(float(m - 1.96 * s), 4), "upper_95": round(float(m + 1.96 * s), 4)}
                if s is not None else {})}
            for t, m, s in zip(times, means[:steps], stddevs[:steps])], metadata, model_dir


def evaluate(model_path, csv=None, column=None, time_column=None, fill="interpolate"):
    """Test MAE of an exported forecaster next to the naive forecasts, on the split it was trained with.

    Without `csv`, the series is the one the model was trained on (the CO2 series for the shipped model).
    """
    import tensorflow as tf

    from toolkit.predictor import load_saved_model

    signatures, metadata, model_dir = load_saved_model(model_path, KIND)
    settings = metadata["train"]
    config = TrainConfig(**{**settings, **({"csv": csv, "column": column, "time_column": time_column, "fill": fill}
                                           if csv else {})})
    data = load_series(config)
    _, _, test = split_windows(data.values, config)
    outputs = signatures["serving_default"](window=tf.constant(test.inputs, tf.float32))
    mean = outputs["forecast"].numpy()
    report = {"model": _mae(mean, test.targets), **baselines(data.values, test, metadata["season"]),
              "windows": len(test.ends), "series": data.name, "model_dir": str(model_dir),
              "first_test_target": str(data.times[test.ends[0] + 1])[:10]}
    if "stddev" in outputs:
        inside = np.abs(test.targets - mean) <= 1.96 * outputs["stddev"].numpy()
        report["interval_95_coverage"] = float(inside.mean())
    return report
