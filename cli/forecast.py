"""`toolkit forecast`: the next values of a time series, from an exported forecaster."""

import click

from cli import options, output
from toolkit.tasks import forecasting


@click.command()
@click.argument("csv_path", metavar="SERIES.CSV", type=click.Path(dir_okay=False), required=False)
@click.option("--steps", type=click.IntRange(min=1, max=forecasting.MAX_STEPS), default=12, show_default=True,
              help="How many values to forecast after the series' end.")
@click.option("--column", default=None, help="The value column (default: the model's series name, or the only one).")
@click.option("--time-column", default=None, help="The date/time column (default: the first that parses as dates).")
@click.option("--fill", type=click.Choice(["interpolate", "error"]), default="interpolate", show_default=True)
@options.model_option("forecast_co2")
@options.runtime
@options.json_output
def forecast(csv_path, steps, column, time_column, fill, model_path, runtime, as_json):
    """Forecast the values after the end of SERIES.CSV (default: the Mauna Loa CO2 series).

    Prints time, forecast and, for models with a learned variance, a 95% interval,
    tab-separated. Steps past the model's horizon are forecast from its own forecasts.
    """
    from toolkit.data import series
    from toolkit.tasks import load

    forecaster = load(model_path or forecasting.SHIPPED_MODEL, forecasting.KIND, runtime)
    if csv_path is None:
        data = series.co2()
    else:
        if column is None:
            column = _default_column(csv_path, forecaster.metadata.get("series"))
        data = series.read_csv(csv_path, column, time_column, fill=fill)
    rows = forecaster.forecast(data, steps)
    metadata = forecaster.metadata
    if data.filled:
        output.echo(f"Note: {data.filled} missing values were interpolated", err=True)
    if steps > metadata["horizon"]:
        output.echo(f"Note: steps after {metadata['horizon']} (the model's horizon) are forecast from forecasts",
                   err=True)
    for row in rows:  # finite: the forecaster refuses a non-finite forecast, so --json is strict JSON
        if "lower_95" in row:
            line = f"{row['time']}\t{row['forecast']:.4f}\t[{row['lower_95']:.4f}, {row['upper_95']:.4f}]"
        else:
            line = f"{row['time']}\t{row['forecast']:.4f}"
        output.echo_answer(row, line, as_json)


def _default_column(csv_path, name):
    """The model's series name if the CSV has such a column; otherwise let the reader pick the only one."""
    try:
        with open(csv_path, encoding="utf-8", errors="replace") as f:
            header = f.readline().strip().split(",")
    except OSError:
        return None
    return name if name in header else None
