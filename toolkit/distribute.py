"""Where a run trains: one device, every local GPU, or several machines; and in which precision.

`--strategy` picks a `tf.distribute` strategy (under `KERAS_BACKEND=jax`, Keras' own
distribution API), the engines TensorFlow's and Keras' users already run on clusters:

    auto          one device; MirroredStrategy over the local GPUs when there are several;
                  MultiWorkerMirroredStrategy when TF_CONFIG names several tasks (as Kubernetes'
                  TFJob, Vertex AI and Ray Train set it). Under JAX: DataParallel over the local devices.
    one-device    the first GPU, else the CPU
    mirrored      MirroredStrategy: synchronous data parallelism over the local GPUs
    multi-worker  MultiWorkerMirroredStrategy over the machines TF_CONFIG names

`--batch-size` is the global batch: each of N replicas computes the gradient of 1/N of it,
and the gradients are summed (all-reduced), then clipped, before every step, so N replicas
take the steps one device would (batch normalisation excepted: each replica normalises
with its own 1/N of the batch). Batches are split by the DATA auto-shard policy: every worker
runs the same seeded pipeline and keeps its slice of each global batch, which keeps the
steps per epoch equal on every worker even where batches are grouped by length.

Only the chief (task "chief", else worker 0) writes the run folder; every other worker
writes to a temporary copy that is deleted at the end, as TensorFlow's multi-worker guide
does. The run folder must be one that every worker reads at the same path (a shared disk,
or the same machine); a restarted cluster resumes from the chief's last checkpoint.
"""

import contextlib
import gc
import json
import os

from toolkit.errors import ToolkitError


def cluster():
    """(task type, task index, number of workers, is chief) from TF_CONFIG; one chief worker without it."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return "worker", 0, 1, True
    try:
        spec = json.loads(raw)
        tasks = spec.get("cluster", {})
        task_type, index = spec["task"]["type"], int(spec["task"]["index"])
        workers = sum(len(tasks.get(kind, ())) for kind in ("chief", "worker"))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ToolkitError(f"TF_CONFIG is not a cluster spec ({type(e).__name__}: {e}); expected "
                           '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}') from None
    if task_type not in ("chief", "worker"):
        raise ToolkitError(f"TF_CONFIG's task type is {task_type!r}: training runs on 'chief' and 'worker' tasks")
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in tasks)
    return task_type, index, max(workers, 1), is_chief


class Placement:
    """The strategy a run trains under, and what this process is in it.

    `strategy` is a `tf.distribute.Strategy` or None (Keras' default: one device, or a
    `keras.distribution` set for JAX); `is_chief` says whether this process writes the run
    folder; `workers` counts the processes, `replicas` the devices that share each batch.
    """

    def __init__(self, name, strategy=None, is_chief=True, workers=1, replicas=1, task=("worker", 0)):
        self.name, self.strategy, self.is_chief = name, strategy, is_chief
        self.workers, self.replicas, self.task = workers, replicas, task

    def close(self):
        """Undoes what placing the run set globally (Keras' distribution under JAX)."""
        if self.name == "data-parallel":
            import keras

            keras.distribution.set_distribution(None)

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self):
        where = f"{self.replicas} replica{'s' if self.replicas != 1 else ''}"
        if self.workers > 1:
            where += f" on {self.workers} workers (this is {self.task[0]} {self.task[1]}"
            where += ", the chief)" if self.is_chief else ")"
        return f"Strategy {self.name}: {where}"

    @contextlib.contextmanager
    def lost_workers_reported(self, run_dir):
        """A multi-worker step that fails because a peer stopped becomes one line saying how to resume."""
        if self.workers < 2:
            yield
            return
        import tensorflow as tf

        message = None
        try:
            yield
        except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError) as e:
            cause = next((line.strip() for line in str(e).splitlines() if "unhealthy" in line or "heartbeat" in line),
                         str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
            message = (f"the cluster lost a worker ({cause[:200]}); start every worker again with the same "
                       f"command: training resumes from the last checkpoint in {run_dir}")
        if message is not None:
            _close_abandoned_pools()
            raise ToolkitError(message)

    def distribute(self, dataset):
        """`dataset` with the DATA auto-shard policy (every worker keeps its slice of each global batch)."""
        if self.strategy is None or dataset is None or not hasattr(dataset, "with_options"):
            return dataset
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)


def _close_abandoned_pools():
    """Closes the thread pools that TensorFlow's failed eager all-reduces left open.

    `CollectiveAllReduce` maps each eager all-reduce (a metric read across replicas) over a
    ThreadPool and closes it only when the map returns. After a lost worker the map raised:
    the pool stays open until the interpreter exits, when multiprocessing has already closed
    its pipes, and its `__del__` prints a traceback below our one line. The process is about
    to exit, so nothing will use them again.
    """
    import multiprocessing.pool

    gc.collect()
    for pool in [o for o in gc.get_objects() if isinstance(o, multiprocessing.pool.ThreadPool)]:
        pool.close()

def place(name):
    """The `Placement` for `--strategy name` on this machine and backend; ToolkitError where it cannot run.

    Call it before TensorFlow runs any op: a multi-worker strategy must configure the
    runtime's collectives first.
    """
    import keras

    backend = keras.backend.backend()
    task_type, index, workers, is_chief = cluster()
    if name == "auto" and workers > 1:
        name = "multi-worker"
    elif workers > 1 and name != "multi-worker":
        raise ToolkitError(f"TF_CONFIG names {workers} workers but --strategy is {name}: every process would train "
                           "alone into the same run folder; use --strategy multi-worker (or auto), or unset TF_CONFIG")
    if backend == "jax":
        return _place_jax(name)
    if backend != "tensorflow":
        if name not in ("auto", "one-device"):
            raise ToolkitError(f"--strategy {name}{' (TF_CONFIG names several workers)' if workers > 1 else ''} "
                               f"needs KERAS_BACKEND=tensorflow (or jax); this is {backend}")
        return Placement(name)

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if name == "multi-worker":
        if workers < 2 and not os.environ.get("TF_CONFIG"):
            raise ToolkitError("--strategy multi-worker needs TF_CONFIG naming the cluster's workers "
                               "(see README, Scaling out)")
        _fix_keras_for_multi_worker()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (tf.errors.OpError, RuntimeError, ValueError) as e:
            cause = getattr(e, "message", None) or str(e)
            raise ToolkitError(f"cannot join the cluster TF_CONFIG names ({cause.strip().splitlines()[0][:200]}); "
                               "is this task's port free, and is TF_CONFIG the same on every worker?") from None
        return Placement(name, strategy, is_chief, workers, strategy.num_replicas_in_sync, (task_type, index))
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        strategy = tf.distribute.MirroredStrategy()
        return Placement("mirrored", strategy, replicas=strategy.num_replicas_in_sync)
    if name == "one-device":
        return Placement(name, tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0"))
    return Placement(name)


def _place_jax(name):
    import keras

    if name == "multi-worker":
        raise ToolkitError("training on several workers (TF_CONFIG, --strategy multi-worker) needs "
                           "KERAS_BACKEND=tensorflow; under JAX use one machine's devices (--strategy mirrored)")
    devices = keras.distribution.list_devices()
    if name == "mirrored" or (name == "auto" and len(devices) > 1):
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return Placement("data-parallel", replicas=len(devices))
    return Placement(name)


# === Precision ===

@contextlib.contextmanager
def precision(policy):
    """Layers built inside compute in `policy` (`mixed_float16`, `mixed_bfloat16`) with float32 variables.

    Under `mixed_float16`, `compile()` wraps the optimiser in a `LossScaleOptimizer`: the loss
    is scaled up before backpropagation so that small float16 gradients do not underflow to 0,
    and the scale is lowered whenever a step overflows. bfloat16 has float32's exponent range
    and needs no scaling. Exports are rebuilt in float32 (`toolkit.training.load_best`).
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_model(model):
    """`model` rebuilt with every layer in float32 (same weights), if any layer computes in mixed precision.

    Mixed precision keeps float32 variables, so the weights carry over unchanged; what changes
    is that the served graph takes and returns float32 and runs at full precision on any CPU.
    """
    if all(not _is_mixed(getattr(layer, "dtype_policy", None)) for layer in model._flatten_layers()):
        return model
    config = _float32_config(model.get_config())
    rebuilt = model.__class__.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _is_mixed(policy):
    return policy is not None and getattr(policy, "name", str(policy)).startswith("mixed_")


def _float32_config(value):
    """A model config with every mixed dtype policy (a layer's "dtype") replaced by float32."""
    if isinstance(value, dict):
        return {k: "float32" if k == "dtype" and _is_mixed_config(v) else _float32_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float32_config(v) for v in value]
    return value


def _is_mixed_config(dtype):
    """Whether a serialized "dtype" (a policy name, or a DTypePolicy config) is a mixed policy."""
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "") if dtype.get("class_name") in ("DTypePolicy",
                                                                                        "FloatDTypePolicy") else ""
    return isinstance(dtype, str) and dtype.startswith("mixed_")


# === Keras 3 under MultiWorkerMirroredStrategy ===

_FIXED = False


def _fix_keras_for_multi_worker():
    """Two fixes that let Keras 3's `fit()` run under `MultiWorkerMirroredStrategy`.

    Keras 3 (3.15 here) fails there before the first step (keras-team/keras#20585): it
    reduces the first *input* batch across workers to learn its shapes (int batches of
    other lengths cannot be averaged, and a tuple of them is refused), and it averages each
    step's scalar logs over axis 0, which a scalar lacks. Here the shapes come from this
    worker's own slice of the batch, and the logs are averaged over the replicas as a
    whole, which is what Keras does for one machine's replicas. Nothing else changes.
    """
    global _FIXED
    if _FIXED:
        return
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None and self._distribute_strategy is not None:
            for _, _, it in iterator:
                local = self._distribute_strategy.experimental_local_results
                data_batch = tree.map_structure(
                    lambda x: local(x)[0] if isinstance(x, tf.distribute.DistributedValues) else x, next(it))
                break
            iterator = None
        return build(self, iterator=iterator, data_batch=data_batch)

    reduce_per_replica = trainer.reduce_per_replica

    def reduce_scalars_too(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_scalars_too
    _FIXED = True
