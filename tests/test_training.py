import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import assert_png
from toolkit import training
from toolkit.errors import ToolkitError


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=training.make_optimizer("adam", 0.05, clip_norm=1.0), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16), tf.data.Dataset.from_tensor_slices((x, y)).batch(32)


def read_history(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_fit_records_the_run(tmp_path):
    train, val = data()
    model, history = training.fit(tiny_model(), train, val, tmp_path, epochs=3, verbose=0)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    rows = read_history(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate", "seconds"} <= set(rows[0])
    assert_png(tmp_path / "learning_curves.png")
    assert (tmp_path / training.BEST_MODEL).exists()
    assert sorted(p.name for p in (tmp_path / "checkpoint").iterdir()) == ["epoch-0003.keras", "state.json"]
    assert not list(tmp_path.rglob("*.tmp*"))  # nothing half-written left behind


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_after_its_last_finished_epoch(tmp_path):
    train, val = data()
    with pytest.raises(KeyboardInterrupt):
        training.fit(tiny_model(), train, val, tmp_path, epochs=4, callbacks=[Interrupt(epoch=2, batch=1)], verbose=0)
    assert [int(r["epoch"]) for r in read_history(tmp_path)] == [1, 2]
    saved, state = training.load_checkpoint(tmp_path)
    weights_after_2 = [w.copy() for w in saved.get_weights()]
    assert state["epoch"] == 2 and state["finished"] is False
    assert int(saved.optimizer.iterations.numpy()) == 8  # the optimiser state travels with the checkpoint

    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    _, history = training.fit(tiny_model(), train, val, tmp_path, epochs=4, callbacks=[record], verbose=0)
    assert seen == [2, 3]  # epochs 3 and 4 (0-based), not from scratch
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert [int(r["epoch"]) for r in read_history(tmp_path)] == [1, 2, 3, 4]
    assert not np.allclose(training.load_checkpoint(tmp_path)[0].get_weights()[0], weights_after_2[0])


def test_early_stopping_survives_a_resume():
    history = [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.4}, {"epoch": 3, "val_loss": 0.45}]
    assert training.best_epoch(history) == 2
    assert not training.should_stop(history, "val_loss", "min", patience=2)
    history.append({"epoch": 4, "val_loss": 0.41})
    assert training.should_stop(history, "val_loss", "min", patience=2)
    assert training.best_epoch(history, "val_loss", "max") == 1


def test_a_finished_run_is_not_trained_again(tmp_path):
    train, val = data()
    training.fit(tiny_model(), train, val, tmp_path, epochs=2, verbose=0)
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    _, history = training.fit(tiny_model(), train, val, tmp_path, epochs=2, callbacks=[record], verbose=0)
    assert seen == [] and len(history) == 2
    _, history = training.fit(tiny_model(), train, val, tmp_path, epochs=3, callbacks=[record], verbose=0)
    assert seen == [2] and len(history) == 3  # asking for more epochs continues it


def test_optimizer_clips_the_global_norm():
    sgd = training.make_optimizer("sgd", 1.0, clip_norm=0.5, momentum=0.0)
    var = keras.Variable(np.zeros(2, "float32"))
    sgd.apply_gradients([(np.array([3.0, 4.0], "float32"), var)])  # norm 5 -> clipped to 0.5
    np.testing.assert_allclose(var.numpy(), [-0.3, -0.4], rtol=1e-5)
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        training.make_optimizer("rmsprop")


def test_a_broken_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text('{"model": "epoch-0001.keras"}')
    with pytest.raises(ToolkitError, match="cannot resume"):
        training.load_checkpoint(tmp_path)


def test_plot_runs_compares_several_runs(tmp_path):
    train, val = data()
    for name in ("a", "b"):
        training.fit(tiny_model(), train, val, tmp_path / name, epochs=2, verbose=0)
    training.plot_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp.png", metric="accuracy")
    assert_png(tmp_path / "cmp.png")
    with pytest.raises(ToolkitError, match="no 'bleu' history"):
        training.plot_runs([tmp_path / "a"], tmp_path / "x.png", metric="bleu")


def test_learning_rate_schedules():
    step = training.learning_rate_schedule(0.1, "step", total_steps=100, warmup_steps=10)
    assert [round(float(step(s)), 4) for s in (0, 9, 20, 50, 75)] == [0.01, 0.1, 0.1, 0.01, 0.001]
    cosine = training.learning_rate_schedule(0.1, "cosine", total_steps=100)
    assert float(cosine(0)) == pytest.approx(0.1) and float(cosine(100)) == pytest.approx(0.0, abs=1e-6)
    assert training.learning_rate_schedule(0.1, "constant") == 0.1
    with pytest.raises(ValueError, match="total_steps > warmup_steps"):
        training.learning_rate_schedule(0.1, "cosine", total_steps=5, warmup_steps=5)


def test_gradient_norms_are_logged_per_step_and_per_epoch(tmp_path):
    """The recorded norm is the norm of the unclipped gradient, computed here independently."""
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]], "float32")
    y = np.array([1.0, 0.0], "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=training.make_optimizer("sgd", 0.0, clip_norm=0.1, momentum=0.0),
                  loss="binary_crossentropy")  # rate 0: the weights, hence the gradient, never change
    with tf.GradientTape() as tape:
        loss = keras.losses.binary_crossentropy(y[:, None], model(x))
        loss = tf.reduce_mean(loss)
    expected = float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_variables)))
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(2).repeat(3)
    training.fit(model, batches, batches.take(1), tmp_path, epochs=2, verbose=0)
    rows = read_history(tmp_path)
    assert float(rows[0]["gradient_norm"]) == pytest.approx(expected, rel=1e-4)
    assert float(rows[1]["gradient_norm_max"]) == pytest.approx(expected, rel=1e-4)
    assert float(rows[0]["clipped_fraction"]) == (1.0 if expected > 0.1 else 0.0)
    with open(tmp_path / training.GradientMonitor.FILE) as f:
        steps = list(csv.DictReader(f))
    assert [(r["epoch"], r["step"]) for r in steps] == [("1", "1"), ("1", "2"), ("1", "3"), ("2", "1"), ("2", "2"), ("2", "3")]
    assert all(float(r["gradient_norm"]) == pytest.approx(expected, rel=1e-4) for r in steps)


def test_no_clipped_fraction_without_clipping(tmp_path):
    train, val = data()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=training.make_optimizer("adam", 0.01), loss="binary_crossentropy")
    training.fit(model, train, val, tmp_path, epochs=1, verbose=0)
    row = read_history(tmp_path)[0]
    assert float(row["gradient_norm"]) > 0 and "clipped_fraction" not in row


def test_runs_from_before_an_option_existed_resume_with_its_old_value(tmp_path):
    """A run whose config predates an option resumes under that option's default, and only under it."""
    from toolkit.atomic import write_json
    from toolkit.errors import ToolkitError
    from toolkit.training import check_same_settings

    write_json(tmp_path / "config.json", {"train": {"cell": "lstm", "epochs": 3}})
    defaults = {"cell": "lstm", "recurrent_init": "orthogonal", "epochs": 3}
    check_same_settings(tmp_path, {"cell": "lstm", "recurrent_init": "orthogonal", "epochs": 5}, defaults=defaults)
    with pytest.raises(ToolkitError, match=r"other settings \(recurrent_init\)"):
        check_same_settings(tmp_path, {"cell": "lstm", "recurrent_init": "uniform", "epochs": 3}, defaults=defaults)
