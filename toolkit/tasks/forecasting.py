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

Windows are never materialised: a split's `inputs` and `targets` are read-only views into the
series, and training and scoring cut each batch's windows from the series inside `tf.data`, so
memory grows with the series and the batch, not with the number of windows (a million-row series
has a million windows of `window + horizon` values each).
"""

import dataclasses
import math
from pathlib import Path

import numpy as np

from toolkit import config as settings
from toolkit.errors import ToolkitError
from toolkit.lite import LitePredictor, predictor
from toolkit.serving import Predictor, number, positive_integer

KIND = "forecaster"
COMMAND = "forecast"
SHIPPED_MODEL = "forecast_co2"
MAX_STEPS = 10_000  # values forecast after a series' end, most of them from earlier forecasts
ENSEMBLES = False
LOSSES = ("gaussian", "mse")
FILLS = ("interpolate", "error")


@dataclasses.dataclass(frozen=True)
class TrainConfig(settings.RunConfig):
    """Everything that decides a forecasting run; stored as the run's config.json."""

    csv: str = None  # None: the Mauna Loa CO2 series shipped with the toolkit (toolkit/data/co2_mauna_loa.csv)
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
    learning_rate: float = 3e-3
    clip_norm: float = 1.0
    epochs: int = 100
    patience: int = 15
    validation_fraction: float = 0.15
    test_fraction: float = 0.15

    def validate(self):
        super().validate()
        settings.choice(self, "fill", FILLS)
        settings.choice(self, "cell", settings.CELLS)
        settings.choice(self, "activation", settings.ACTIVATIONS)
        settings.choice(self, "loss", LOSSES)
        settings.positive(self, "window", "horizon", "units", "num_layers")
        settings.positive(self, "season", optional=True)
        settings.at_least(self, "l2", 0)
        settings.fraction(self, "dropout")
        settings.fraction(self, "validation_fraction", "test_fraction", open_zero=True)
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must leave a training part. Received: "
                             f"{self.validation_fraction} + {self.test_fraction}")


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
    """The windows whose targets all lie in `values[first_target:last_target]`.

    `inputs` and `targets` are read-only views into `values`, not copies.
    """
    ends = np.arange(max(window - 1, first_target - 1), last_target - horizon)
    if len(ends) == 0:
        return Windows(np.zeros((0, window)), np.zeros((0, horizon)), ends)
    views = np.lib.stride_tricks.sliding_window_view
    inputs = views(values, window)[ends[0] - window + 1:ends[-1] - window + 2]  # row i: values[i:i + window]
    targets = views(values, horizon)[ends[0] + 1:ends[-1] + 2]
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


def change_scale(windows, chunk=65536):
    """The standard deviation of the windows' horizon-step changes (targets minus the window's last value).

    Computed a chunk of windows at a time, so it costs no more memory than one chunk.
    """
    starts = range(0, len(windows.ends), chunk)

    def changes(i):
        return windows.targets[i:i + chunk] - windows.inputs[i:i + chunk, -1:]

    count = windows.targets.size
    mean = math.fsum(float(changes(i).sum()) for i in starts) / count
    return math.sqrt(math.fsum(float(np.square(changes(i) - mean).sum()) for i in starts) / count)


def window_batches(values, windows, scale, batch_size, *, shuffle=False, seed=None):
    """`tf.data` batches of (scaled inputs `[b, window, 1]`, scaled targets `[b, horizon]`) of `windows`.

    Only the series and the windows' end indices are held; each batch's windows are cut from the
    series when the batch is needed and scaled by the model's own functions (in float64, then
    cast to float32), so memory is that of the series plus a batch. Shuffling permutes the end
    indices as one tensor, anew each epoch (a shuffle buffer of a million windows would cost
    hundreds of bytes a window).
    """
    import tensorflow as tf

    from toolkit.models.forecaster import scale_targets, scale_windows

    series = tf.constant(values, tf.float64)
    past = tf.range(-windows.inputs.shape[1] + 1, 1, dtype=tf.int64)
    future = tf.range(1, windows.targets.shape[1] + 1, dtype=tf.int64)

    def cut(ends):
        inputs = tf.gather(series, ends[:, None] + past[None, :])
        targets = tf.gather(series, ends[:, None] + future[None, :])
        return (tf.cast(scale_windows(inputs, scale), tf.float32),
                tf.cast(scale_targets(inputs, targets, scale), tf.float32))

    ends = tf.constant(np.asarray(windows.ends, np.int64))
    if shuffle:
        seed = 0 if seed is None else seed

        def permuted(epoch_seed):  # a new epoch_seed each time the dataset is iterated: each epoch
            key = tf.stack([epoch_seed, tf.constant(seed, tf.int64)])
            order = tf.random.experimental.stateless_shuffle(ends, seed=key)
            return tf.data.Dataset.from_tensor_slices(order)

        dataset = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1).flat_map(permuted)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(windows.ends)))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(ends)
    return dataset.batch(batch_size).map(cut, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _mae(predictions, targets):
    errors = np.abs(predictions - targets)
    return {"mae": float(errors.mean()), "mae_by_horizon": [float(e) for e in errors.mean(axis=0)]}


def train(config, run_dir):
    """Trains a forecaster in `run_dir` (resuming it if interrupted) and scores it against the baselines."""
    from toolkit.data import series as series_lib
    from toolkit.losses import GaussianNLL, mean_absolute_error_of_mean
    from toolkit.models.forecaster import build_forecaster
    from toolkit.training import Run, data_fingerprint

    with Run(run_dir, KIND, config) as run:
        data = load_series(config)
        season = config.season or series_lib.season_length(data.step)
        train_w, validation_w, test_w = split_windows(data.values, config)
        scale = change_scale(train_w) or 1.0
        run.write_config(series=data.name, source=config.csv or "toolkit/data/co2_mauna_loa.csv",
                         step_seconds=float(data.step / np.timedelta64(1, "s")), season=season, scale=scale,
                         values=len(data), filled=data.filled, data=data_fingerprint(data.values))

        gaussian = config.loss == "gaussian"
        model = build_forecaster(config.window, config.horizon, cell=config.cell, units=config.units,
                                 num_layers=config.num_layers, bidirectional=config.bidirectional,
                                 activation=config.activation, dropout=config.dropout, l2=config.l2, gaussian=gaussian)
        steps = math.ceil(len(train_w.ends) / config.batch_size)
        model.compile(optimizer=run.optimizer(steps_per_epoch=steps), loss=GaussianNLL() if gaussian else "mse",
                      metrics=[mean_absolute_error_of_mean if gaussian else "mae"])

        def batches(windows, shuffle):
            return window_batches(data.values, windows, scale, config.batch_size, shuffle=shuffle, seed=config.seed)

        model, results = run.fit(model, batches(train_w, True), batches(validation_w, False), summary=False)
        results.update(windows={"train": len(train_w.ends), "validation": len(validation_w.ends), "test": len(test_w.ends)},
                       season=season, filled_values=data.filled)
        for name, windows in (("validation", validation_w), ("test", test_w)):
            mean, stddev = predict_windows(model, data.values, windows, scale, gaussian)
            results[name] = score(mean, stddev, windows, data.values, season)
        return run.finish(results)


def score(mean, stddev, windows, values, season):
    """MAE of forecasts (`mean`, `stddev` or None) on `windows`, beside the baselines' on the same windows."""
    report = {"model": _mae(mean, windows.targets), **baselines(values, windows, season)}
    if stddev is not None:
        inside = np.abs(windows.targets - mean) <= 1.96 * stddev
        report["interval_95_coverage"] = float(inside.mean())
    return report


def predict_windows(model, values, windows, scale, gaussian, batch_size=256):
    """(means, standard deviations or None) `[n, horizon]` in the series' units, for `windows` of `values`."""
    import keras

    from toolkit.models.forecaster import unscale_outputs

    outputs = model.predict(window_batches(values, windows, scale, batch_size), verbose=0)
    mean, stddev = unscale_outputs(keras.ops.convert_to_numpy(outputs), windows.inputs, scale, gaussian)
    return mean, None if stddev is None else keras.ops.convert_to_numpy(stddev)


def forecaster_archive(model, scale, gaussian):
    """`serving_default`: raw windows `[batch, window]` -> `{"forecast": [batch, horizon]}` (+ `"stddev"`)."""
    import keras
    import tensorflow as tf

    window = model.input_shape[1]
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", serving_function(model, scale, gaussian),
                         input_signature=[tf.TensorSpec(shape=(None, window), dtype=tf.float32, name="window")])
    return archive


def exported(run_dir):
    """(the run's best model, its config, its export metadata): what both export forms read from a run."""
    import toolkit.losses  # noqa: F401  (registers the loss and metric for loading)
    from toolkit import training

    config = training.read_run(Path(run_dir), KIND)
    model = training.load_best(run_dir)
    metadata = {"kind": KIND, "series": config["series"], "window": config["train"]["window"],
                "horizon": config["train"]["horizon"], "step_seconds": config["step_seconds"],
                "season": config["season"], "gaussian": config["train"]["loss"] == "gaussian",
                "parameters": model.count_params(), "train": config["train"], "metrics": config["metrics"]}
    return model, config, metadata


def serving_function(model, scale, gaussian):
    """Raw windows -> `{"forecast"}` (+ `"stddev"`): the SavedModel's and the LiteRT form's."""
    from toolkit.models.forecaster import scale_windows, unscale_outputs

    def serve(values):
        mean, stddev = unscale_outputs(model(scale_windows(values, scale), training=False), values, scale, gaussian)
        return {"forecast": mean} if stddev is None else {"forecast": mean, "stddev": stddev}

    return serve


def export_run(run_dir, to, name, version):
    """Exports the best model of a forecasting run as `TO/NAME/VERSION`, with its LiteRT form."""
    from toolkit import export
    from toolkit.lite.convert import form_or_note

    model, config, metadata = exported(run_dir)
    window = [float(i) for i in range(config["train"]["window"])]  # any window: it is scaled in the graph
    return export.write_saved_model(forecaster_archive(model, config["scale"], metadata["gaussian"]), to, name,
                                    version, metadata,
                                    warmup=[("serving_default", {"window": [window]})],
                                    litert=form_or_note(lambda: lite_form(model, config, metadata)))


def litert_form(run_dir):
    """The LiteRT form: the serving function whole (raw windows in, window scaling inside), the recurrent layers
    unrolled over the window (`toolkit.lite.convert.unrolled`)."""
    return lite_form(*exported(run_dir))


def lite_form(model, config, metadata):
    """`litert_form` of what `exported` read from a run."""
    import tensorflow as tf

    from toolkit.lite.convert import LiteForm, to_litert, unrolled

    model = unrolled(model)
    window = config["train"]["window"]
    serve = serving_function(model, config["scale"], metadata["gaussian"])
    flatbuffer = to_litert(serve, [tf.TensorSpec([None, window], tf.float32, name="window")], track=[model])
    return LiteForm(flatbuffer, {"inputs": {"window": window}}, {}, metadata)


def evaluate(model_path, csv=None, column=None, time_column=None, fill="interpolate", on_progress=None,
             runtime="auto"):
    """Test MAE of an exported forecaster next to the naive forecasts, on the split it was trained with.

    Without `csv`, the series is the one the model was trained on (the CO2 series for the shipped model).
    `on_progress(n, total)` is called once the n test windows are forecast (a second's work: one step).
    """
    forecaster = predictor(model_path, runtime, Forecaster, LiteForecaster)
    overrides = {"csv": csv, "column": column, "time_column": time_column, "fill": fill} if csv else {}
    config = TrainConfig.from_settings({**forecaster.metadata["train"], **overrides})
    data = load_series(config)
    _, _, test = split_windows(data.values, config)
    mean, stddev = forecaster.predict_windows(test.inputs)
    if on_progress:
        on_progress(len(test.ends), len(test.ends))
    if not np.isfinite(mean).all():
        raise ToolkitError(f"the model's forecasts of {data.name} are not finite numbers: its values "
                           f"({np.min(data.values):g} to {np.max(data.values):g}) are out of the model's reach")
    return {**score(mean, stddev, test, data.values, forecaster.metadata["season"]), "windows": len(test.ends),
            "series": data.name, "model_dir": str(forecaster.model_dir), "runtime": forecaster.runtime,
            "first_test_target": str(data.times[test.ends[0] + 1])[:10]}


class ForecastAnswers:
    """What both runtimes' forecasters share: forecasts from `predict_windows`, which each runtime has its own of."""

    kind = KIND
    metadata_fields = {"window": positive_integer, "horizon": positive_integer, "step_seconds": number,
                       "season": positive_integer}

    def predict_windows(self, windows, batch_size=4096):
        """(means `[n, horizon]`, standard deviations or None) for raw windows `[n, window]`, a batch at a time."""
        windows = np.asarray(windows, dtype=np.float32).reshape(-1, self.metadata["window"])
        means, stddevs = [], []
        for start in range(0, max(len(windows), 1), batch_size):
            outputs = self.serve_windows(windows[start:start + batch_size])
            means.append(outputs["forecast"])
            stddevs.append(outputs.get("stddev"))
        return np.concatenate(means), None if stddevs[0] is None else np.concatenate(stddevs)

    def forecast(self, series, steps=12):
        """Rows of `{"time", "forecast"}` (+ a 95% interval) for `steps` values after the end of `series`.

        `series` is a `toolkit.data.series.Series` (from `series.read_csv`), whose spacing must be
        the model's; or just its latest values (a list or array of at least `window` numbers, in
        the model's units and spacing), and then the rows have `step` (1 = the next value) in
        place of `time`. Up to the model's horizon the forecast is direct (with a 95% interval
        for Gaussian models); beyond it, forecasts are fed back as inputs (no interval there).
        """
        from toolkit.data.series import Series, describe_step

        if not positive_integer(steps) or steps > MAX_STEPS:
            raise ToolkitError(f"steps must be a whole number from 1 to {MAX_STEPS:,}. Received: {steps!r}")
        if isinstance(series, Series):
            values = series.values
            step = np.timedelta64(int(self.metadata["step_seconds"] * 1e9), "ns")
            if abs((series.step - step) / step) > 0.15:
                raise ToolkitError(f"the series is spaced {describe_step(series.step)} apart, "
                                   f"but the model was trained on steps of {describe_step(step)}")
        else:
            try:
                values = np.asarray(series, dtype=np.float64)
            except (TypeError, ValueError):
                values = None
            if values is None or values.ndim != 1:
                raise ToolkitError("a series is a toolkit Series or a list of numbers (one series, oldest first)")
            if not np.isfinite(values).all():
                raise ToolkitError("the series' values must be finite numbers")
        if len(values) < self.window:
            raise ToolkitError(f"the series has {len(values)} values; the model needs the last {self.window}")
        history = list(values[-self.window:])
        means, stddevs = [], []
        while len(means) < steps:
            mean, stddev = self.predict_windows([history[-self.window:]])
            means += list(mean[0])
            stddevs += list(stddev[0]) if stddev is not None and not stddevs else [None] * self.horizon
            history += list(mean[0])
        if not np.isfinite(means + [s for s in stddevs if s is not None]).all():  # never printed, nor as JSON
            last = values[-self.window:]
            raise ToolkitError(f"the forecast is not a finite number: the series' last {self.window} values "
                               f"({last.min():g} to {last.max():g}) are out of the model's reach")
        if isinstance(series, Series):
            places = [{"time": str(t)[:19].replace("T00:00:00", "")} for t in series.future_times(steps)]
        else:
            places = [{"step": i} for i in range(1, steps + 1)]
        return [{**place, "forecast": round(float(m), 4),
                 **({"lower_95": round(float(m - 1.96 * s), 4), "upper_95": round(float(m + 1.96 * s), 4)}
                    if s is not None else {})}
                for place, m, s in zip(places, means[:steps], stddevs[:steps])]


class Forecaster(ForecastAnswers, Predictor):
    """An exported forecaster: raw windows in, forecasts (and standard deviations) in the series' units out."""

    def __init__(self, path):
        super().__init__(path)
        self.serve = self.signatures["serving_default"]
        self.window, self.horizon = self.metadata["window"], self.metadata["horizon"]

    def serve_windows(self, windows):
        import tensorflow as tf

        return {k: v.numpy() for k, v in self.serve(window=tf.constant(windows, tf.float32)).items()}


class LiteForecaster(ForecastAnswers, LitePredictor):
    """`Forecaster` through the model's LiteRT form (the serving function whole, window scaling inside)."""

    input_names = ("window",)

    def __init__(self, path):
        super().__init__(path)
        self.window, self.horizon = self.metadata["window"], self.metadata["horizon"]

    def serve_windows(self, windows):
        return self.model(window=np.ascontiguousarray(windows, np.float32))


PREDICTOR = Forecaster
LITE_PREDICTOR = LiteForecaster
