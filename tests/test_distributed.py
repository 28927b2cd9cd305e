"""Training over several processes: `--strategy multi-worker` with TF_CONFIG, two workers on 127.0.0.1.

Each test starts real `toolkit train` processes, as README's "Scaling out" shows, on free
ports; every process is killed if it outlives TIMEOUT, so no test can hang.
"""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.helpers import (
    NEGATIVE,
    POSITIVE,
    REPO,
    free_ports,
    tf_config,
    write_colour_folders,
    write_reviews,
)

TIMEOUT = 240  # seconds any one process may run
TOOLKIT = [sys.executable, "-c", "from cli.main import main; main()"]


def start_workers(args, logs, tag, workers=2):
    """`toolkit ARGS` in `workers` processes that form one cluster; their output goes to LOGS/TAG-i.log."""
    ports = free_ports(workers)
    processes = []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(ports, index), "TF_CPP_MIN_LOG_LEVEL": "3"}
        with open(logs / f"{tag}-{index}.log", "w") as log:
            processes.append(subprocess.Popen(TOOLKIT + args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
    return processes


def wait_all(processes, logs=None, tag=None):
    """The exit codes, once every process has ended by itself within TIMEOUT (else all are killed, and the test fails)."""
    deadline = time.monotonic() + TIMEOUT
    codes = []
    try:
        for process in processes:
            codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"a worker ran past {TIMEOUT} s" + (f"; see {logs}/{tag}-*.log" if logs else ""))
    return codes


def steps_per_epoch(run_dir):
    """{epoch: training steps} from the run's gradient_norms.csv (one row per step)."""
    with open(run_dir / "gradient_norms.csv") as f:
        return dict(Counter(int(row["epoch"]) for row in csv.DictReader(f)))


def epochs_recorded(run_dir):
    with open(run_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def log_text(logs, tag, index):
    return (logs / f"{tag}-{index}.log").read_text(errors="replace")


def run_one(args):
    return subprocess.run(TOOLKIT + args, env={**os.environ, "TF_CONFIG": "", "TF_CPP_MIN_LOG_LEVEL": "3"}, cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)


def kill_mid_training_and_resume(args, run_dir, logs, epochs):
    """Kills worker 1 with SIGKILL once the chief has checkpointed epoch 1; the other worker must stop by
    itself with one line; both restarted with the same command finish the run from the checkpoint."""
    workers = start_workers(args, logs, "killed")
    state = run_dir / "checkpoint" / "state.json"
    deadline = time.monotonic() + TIMEOUT
    while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
        assert workers[0].poll() is None and workers[1].poll() is None, log_text(logs, "killed", 0)[-2000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)
    os.kill(workers[1].pid, signal.SIGKILL)
    codes = wait_all(workers, logs, "killed")
    killed_at = json.loads(state.read_text())["epoch"]
    assert codes[1] == -signal.SIGKILL
    assert codes[0] != 0 and killed_at < epochs, "the chief cannot finish without its peer"
    survivor = log_text(logs, "killed", 0)
    errors = [line for line in survivor.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in survivor, survivor[-3000:]
    assert errors[0].startswith("Error: the cluster lost a worker") and "resumes from the last checkpoint" in errors[0]

    assert wait_all(start_workers(args, logs, "resumed"), logs, "resumed") == [0, 0]
    assert f"Resuming {run_dir} after epoch {killed_at}." in log_text(logs, "resumed", 0)
    assert epochs_recorded(run_dir) == list(range(1, epochs + 1))
    assert (run_dir / "metrics.json").is_file()
    return killed_at


# === Text classification ===

@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    root = tmp_path_factory.mktemp("reviews")
    rng = random.Random(1)
    for split, count in (("train", 120), ("test", 10)):
        write_reviews(root / split / "neg", NEGATIVE, count, rng)
        write_reviews(root / split / "pos", POSITIVE, count, rng)
    return root


def sentiment_args(data, run_dir, epochs, batch_size=16):
    """A tiny many-to-one LSTM: it learns the toy reviews in two epochs (a bidirectional reader of bigrams with
    dropout, the defaults, needs more), so the answers of the runs compared are not coin flips."""
    return ["train", "sentiment", "--data-dir", str(data), "--out", str(run_dir), "--epochs", str(epochs),
            "--units", "8", "--embedding-dim", "8", "--vocabulary-size", "100", "--batch-size", str(batch_size),
            "--cell", "lstm", "--unidirectional", "--pooling", "last", "--dropout", "0", "--bigram-buckets", "0"]


def test_two_workers_train_sentiment_as_one_worker_would(reviews, tmp_path):
    from toolkit.tasks import load

    two, one = tmp_path / "two", tmp_path / "one"
    codes = wait_all(start_workers(sentiment_args(reviews, two, 2) + ["--strategy", "multi-worker"], tmp_path, "two"),
                     tmp_path, "two")
    assert codes == [0, 0], log_text(tmp_path, "two", 0)[-3000:]
    assert "Strategy multi-worker: 2 replicas on 2 workers (this is worker 0, the chief)" in log_text(tmp_path, "two", 0)
    single = run_one(sentiment_args(reviews, one, 2))
    assert single.returncode == 0, single.stderr[-3000:]

    # The global batch is --batch-size: two workers take the steps one takes.
    assert steps_per_epoch(two) == steps_per_epoch(one)
    assert sum(steps_per_epoch(one).values()) > 2
    # Only the chief wrote the run folder, and it holds what a one-worker run holds.
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    config = json.loads((two / "config.json").read_text())
    assert config["train"]["strategy"] == "multi-worker"

    exported = run_one(["export", str(two), "--to", str(tmp_path / "models"), "--name", "sentiment"])
    assert exported.returncode == 0, exported.stderr[-2000:]
    answers = load(tmp_path / "models" / "sentiment").predict(["A wonderful, brilliant film.", "Awful and dull."])
    assert [a["label"] for a in answers] == ["pos", "neg"]


def test_a_killed_worker_resumes_sentiment_from_the_last_checkpoint(reviews, tmp_path):
    run_dir = tmp_path / "run"
    args = sentiment_args(reviews, run_dir, 3, batch_size=4) + ["--strategy", "multi-worker"]
    kill_mid_training_and_resume(args, run_dir, tmp_path, epochs=3)


# === Image classification ===

@pytest.fixture(scope="module")
def colour_folders(tmp_path_factory):
    """`ROOT/{train,test}/{blue,green,red}/*.png`: 12x12 noisy squares of one colour each."""
    return write_colour_folders(tmp_path_factory.mktemp("colours"), {"train": 40, "test": 4}, size=12, seed=2)


def image_args(data, run_dir, epochs, batch_size=12):
    return ["train", "images", "--dataset", "folder", "--data-dir", str(data), "--out", str(run_dir),
            "--arch", "lenet5", "--epochs", str(epochs), "--batch-size", str(batch_size), "--learning-rate", "0.02",
            "--warmup-epochs", "0", "--translate", "0"]


def test_two_workers_train_images_as_one_worker_would_and_resume_after_a_kill(colour_folders, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    codes = wait_all(start_workers(image_args(colour_folders, two, 2) + ["--strategy", "multi-worker"], tmp_path,
                                   "two"), tmp_path, "two")
    assert codes == [0, 0], log_text(tmp_path, "two", 0)[-3000:]
    single = run_one(image_args(colour_folders, one, 2))
    assert single.returncode == 0, single.stderr[-3000:]
    assert steps_per_epoch(two) == steps_per_epoch(one) == {1: 9, 2: 9}  # 108 training images, 12 a step
    assert json.loads((two / "metrics.json").read_text())["test_examples"] == 12

    run_dir = tmp_path / "killed"
    args = image_args(colour_folders, run_dir, 3, batch_size=4) + ["--strategy", "multi-worker"]
    kill_mid_training_and_resume(args, run_dir, tmp_path, epochs=3)


# === One machine, and what cannot run ===

@pytest.mark.parametrize("strategy", ["one-device", "mirrored"])
def test_one_machine_strategies_train_and_resume(text_data, tmp_path, strategy):
    from toolkit.tasks import text_classification as tc

    config = dict(data_dir=str(text_data), units=8, embedding_dim=8, vocabulary_size=100, batch_size=16,
                  strategy=strategy, cell="lstm", bidirectional=False, pooling="last", dropout=0.0,
                  bigram_buckets=0)  # the tiny many-to-one LSTM of `sentiment_args`, which learns in two epochs
    tc.train(tc.TrainConfig(epochs=1, **config), tmp_path)
    results = tc.train(tc.TrainConfig(epochs=2, **{**config, "strategy": "auto"}), tmp_path)  # may move on resume
    assert results["epochs_trained"] == 2 and results["test"]["accuracy"] >= 0.5
    assert steps_per_epoch(tmp_path)[1] == steps_per_epoch(tmp_path)[2]


@pytest.mark.parametrize("tf_config, message", [
    ("", "--strategy multi-worker needs TF_CONFIG"),
    ("{not json", "TF_CONFIG is not a cluster spec"),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "ps", "index": 0}}', "task type is 'ps'"),
])
def test_a_cluster_that_cannot_run_is_one_line_and_writes_nothing(text_data, tmp_path, monkeypatch, tf_config,
                                                                   message):
    from click.testing import CliRunner

    from cli.main import toolkit
    from tests.helpers import one_error_line

    monkeypatch.setenv("TF_CONFIG", tf_config)
    result = CliRunner().invoke(toolkit, sentiment_args(text_data, tmp_path / "run", 1) + ["--strategy", "multi-worker"])
    assert message in one_error_line(result)
    assert not (tmp_path / "run").exists()


def test_jax_data_parallel_over_the_local_devices(colour_folders, tmp_path):
    """Under KERAS_BACKEND=jax, `auto` spreads each batch over the local devices (two CPU devices here; jax is a
    test dependency: the GPU route trains under JAX)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "TF_CONFIG": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # 108 training images, 10 a batch: the last batch (8) still splits over two devices.
    result = subprocess.run(TOOLKIT + image_args(colour_folders, tmp_path / "run", 2, batch_size=10), env=env,
                            cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy data-parallel: 2 replicas" in result.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["backend"] == "jax"
    odd = subprocess.run(TOOLKIT + image_args(colour_folders, tmp_path / "odd", 1, batch_size=7), env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert odd.returncode == 1 and odd.stderr.strip().splitlines()[-1] == \
        "Error: --batch-size 7 does not split over 2 devices: give a multiple of 2"


# === Several replicas: what their gradient shares add up to ===

REPLICAS_SCRIPT = """
import json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from toolkit.training import SyncedLossScaleOptimizer, make_optimizer

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {}

def step(optimizer, variable, shares):
    values = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(shares[context.replica_id_in_sync_group]))
    strategy.run(lambda g: optimizer.apply([g], [variable]), args=(values,))

with strategy.scope():
    # Shares (10, 0) and (-9, 0) sum to (1, 0): below the clip norm 5, so not clipped at all.
    variable = keras.Variable([0.0, 0.0])
    sgd = make_optimizer("sgd", 1.0, clip_norm=5.0, momentum=0.0)
    sgd.build([variable])
    step(sgd, variable, [[10.0, 0.0], [-9.0, 0.0]])
    out["clipped_step"] = variable.numpy().tolist()
    out["norm"] = float(sgd.gradient_norm.numpy())
    # One replica's share overflows: every replica skips the step and the loss scale halves.
    variable = keras.Variable([1.0, 1.0])
    scaled = SyncedLossScaleOptimizer(make_optimizer("sgd", 1.0, momentum=0.0))
    scaled.build([variable])
    scale = float(scaled.dynamic_scale.numpy())
    step(scaled, variable, [[1.0, 1.0], [float("inf"), 1.0]])
    out["overflow_step"] = variable.numpy().tolist()
    out["scale_ratio"] = float(scaled.dynamic_scale.numpy()) / scale
print(json.dumps(out))
"""


def test_two_replicas_clip_the_summed_gradient_and_agree_on_overflow():
    """Two replicas (two logical CPUs): clipping acts on the summed gradient, as on one device, and a step that
    overflowed on one replica is skipped by both (Keras 3 alone clips each share and asks only the first)."""
    result = subprocess.run([sys.executable, "-c", REPLICAS_SCRIPT], cwd=REPO, capture_output=True, text=True,
                            timeout=TIMEOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["clipped_step"] == pytest.approx([-1.0, 0.0])
    assert out["norm"] == pytest.approx(1.0)
    assert out["overflow_step"] == [1.0, 1.0]
    assert out["scale_ratio"] == 0.5


def test_a_worker_that_is_not_the_chief_leaves_the_run_folder_alone(text_data, tmp_path, monkeypatch):
    from toolkit import distribute
    from toolkit.tasks import text_classification as tc

    monkeypatch.setattr(distribute, "place", lambda name: distribute.Placement(name, is_chief=False,
                                                                              task=("worker", 1)))
    # The tiny many-to-one LSTM of `sentiment_args`: what is checked is where files go, not the model.
    results = tc.train(tc.TrainConfig(data_dir=str(text_data), units=8, embedding_dim=8, vocabulary_size=100,
                                      epochs=1, cache=str(tmp_path / "cache"), cell="lstm", bidirectional=False,
                                      pooling="last", dropout=0.0, bigram_buckets=0), tmp_path / "run")
    assert results["epochs_trained"] == 1 and "test" in results
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_several_workers_with_a_one_machine_strategy_are_refused(text_data, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cli.main import toolkit
    from tests.helpers import one_error_line

    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 0))
    result = CliRunner().invoke(toolkit, sentiment_args(text_data, tmp_path / "run", 1) + ["--strategy", "mirrored"])
    assert "use --strategy multi-worker" in one_error_line(result)
    assert not (tmp_path / "run").exists()
