"""Choosing the tf.distribute strategy a run trains under, and feeding it data.

`--strategy` names one of `STRATEGIES`:

- `one_device`: the default strategy (one CPU or GPU).
- `mirrored`: `tf.distribute.MirroredStrategy` over the visible GPUs, or over
  several logical CPU devices when there are no GPUs (how it is tested here).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster
  comes from the `TF_CONFIG` environment variable (`tl-app launch` writes one
  for local workers). Keras 3 `model.fit` cannot train under it
  (keras-team/keras#20585), so these runs use `engine.custom_loop`.
- `tpu`: `tf.distribute.TPUStrategy` on the TPU named by `--tpu`, `TPU_NAME`,
  Colab's `COLAB_TPU_ADDR`, or the local TPU of a Cloud TPU VM.
- `auto`: TPU when one resolves, else multi_worker when TF_CONFIG names a
  cluster, else mirrored when more than one GPU is visible, else one device.
  The choice and its reason are logged. A TPU found in the environment that
  does not resolve is logged and skipped; one named by `--tpu` is an error.

`batch_size` is always the GLOBAL batch: each replica gets batch_size / replicas.
"""
import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from tl_app import log
from tl_app.errors import ClusterError, UserError  # noqa: F401  (ClusterError: part of this module's API)

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


@dataclass
class StrategyChoice:
    """The strategy a run trains under and how it was chosen.

    Args:
        strategy: the `tf.distribute.Strategy`.
        name: one of `one_device`, `mirrored`, `multi_worker`, `tpu`.
        device: `cpu`, `gpu` or `tpu`: what the replicas run on (sets mixed precision for `auto`).
        reason: why `auto` chose it (or "requested").
        is_chief: whether this process writes logs, checkpoints and the export.
        task: `type:index` of this process in a TF_CONFIG cluster, else None.
    """

    strategy: Any
    name: str
    device: str
    reason: str = "requested"
    is_chief: bool = True
    task: Optional[str] = None

    @property
    def replicas(self):
        return int(self.strategy.num_replicas_in_sync)

    def describe(self, global_batch):
        per_replica = per_replica_batch(global_batch, self.replicas)
        where = f", task {self.task}" if self.task else ""
        return (f"strategy {self.name} ({self.reason}; {self.replicas} replica(s) on {self.device}{where}); "
                f"global batch {global_batch} = {per_replica} per replica")

    def to_dict(self, global_batch):
        return {"strategy": self.name, "replicas": self.replicas, "device": self.device,
                "global_batch_size": global_batch, "per_replica_batch_size": per_replica_batch(global_batch, self.replicas)}


def per_replica_batch(global_batch, replicas):
    """The batch each replica sees; the global batch must split evenly."""
    if global_batch % replicas:
        raise UserError(f"batch_size {global_batch} is the global batch and must be a multiple of the "
                        f"{replicas} replicas; use e.g. --batch-size {replicas * max(1, global_batch // replicas)}.")
    return global_batch // replicas


# ---- TF_CONFIG ---------------------------------------------------------------

def parse_tf_config(raw):
    """The validated TF_CONFIG dict; UserError naming the bad field.

    Args:
        raw: the TF_CONFIG string, e.g.
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}'.
    """
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    if not isinstance(config, dict):
        raise UserError("TF_CONFIG must be a JSON object with fields 'cluster' and 'task'.")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise UserError("TF_CONFIG field 'cluster' is missing or empty; expected e.g. {\"worker\": [\"host:port\", ...]}.")
    for job, addresses in cluster.items():
        if job not in ("chief", "worker", "evaluator", "ps"):
            raise UserError(f"TF_CONFIG field 'cluster.{job}': unknown job; use 'worker' (and optionally 'chief').")
        if not isinstance(addresses, list) or not addresses:
            raise UserError(f"TF_CONFIG field 'cluster.{job}' must be a non-empty list of 'host:port' strings.")
        for address in addresses:
            host, sep, port = str(address).rpartition(":")
            if not isinstance(address, str) or not sep or not host or not port.isdigit():
                raise UserError(f"TF_CONFIG field 'cluster.{job}': {address!r} is not 'host:port'.")
    if "ps" in cluster:
        raise UserError("TF_CONFIG field 'cluster.ps': parameter servers are not supported; list 'worker' tasks only.")
    task = config.get("task")
    if not isinstance(task, dict):
        raise UserError("TF_CONFIG field 'task' is missing; expected {\"type\": \"worker\", \"index\": N}.")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise UserError(f"TF_CONFIG field 'task.type' is {task_type!r}; expected one of the cluster's jobs: "
                        f"{', '.join(cluster)}.")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[task_type]):
        raise UserError(f"TF_CONFIG field 'task.index' is {index!r}; expected 0..{len(cluster[task_type]) - 1} "
                        f"(cluster.{task_type} has {len(cluster[task_type])} entries).")
    return config


def tf_config_from_env(environ=None):
    """The validated TF_CONFIG of this process, or None when it is unset or names no cluster."""
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None
    return parse_tf_config(raw)


def is_chief_task(tf_config):
    """The chief writes: task `chief`, or worker 0 when the cluster has no chief job."""
    if tf_config is None:
        return True
    task = tf_config["task"]
    if "chief" in tf_config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


# ---- devices -----------------------------------------------------------------

def visible_gpus():
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU")


def visible_cpus():
    import tensorflow as tf

    return tf.config.list_logical_devices("CPU")


def tpu_name_from_env(tpu=None, environ=None):
    """The TPU to resolve: `--tpu`, TPU_NAME, Colab, or 'local' on a Cloud TPU VM; None when nothing says TPU."""
    env = environ if environ is not None else os.environ
    if tpu:
        return tpu
    if env.get("TPU_NAME"):
        return env["TPU_NAME"]
    if env.get("COLAB_TPU_ADDR"):
        return f"grpc://{env['COLAB_TPU_ADDR']}"
    if env.get("TPU_ACCELERATOR_TYPE") or os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0"):
        return "local"  # Cloud TPU VM: the TPU is attached to this host
    return None


def connect_tpu(name):
    """Resolve, connect and initialise the TPU `name`; returns the cluster resolver (raises when none resolves)."""
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return resolver


# ---- the choice ----------------------------------------------------------------

def _one_device(reason="requested"):
    import tensorflow as tf

    device = "gpu" if visible_gpus() else "cpu"
    return StrategyChoice(tf.distribute.get_strategy(), "one_device", device, reason)


def _mirrored(reason="requested"):
    import tensorflow as tf

    gpus = visible_gpus()
    if len(gpus) >= 2:
        return StrategyChoice(tf.distribute.MirroredStrategy([d.name for d in gpus]), "mirrored", "gpu", reason)
    cpus = visible_cpus()
    if len(gpus) < 2 and len(cpus) >= 2:
        return StrategyChoice(tf.distribute.MirroredStrategy([d.name for d in cpus]), "mirrored", "cpu", reason)
    raise UserError(f"--strategy mirrored needs at least two devices; this machine shows {len(gpus)} GPU(s) and "
                    f"{len(cpus)} CPU device(s). Use --strategy one_device (or auto).")


def _tpu(name, reason="requested", where="--strategy tpu", hint="pass --tpu NAME or use --strategy auto"):
    import tensorflow as tf

    try:
        resolver = connect_tpu(name)
    except Exception as exc:  # the resolver raises ValueError, NotFoundError, ... depending on the environment
        raise UserError(f"{where}: no TPU resolves for {name!r} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); {hint}.") from None
    return StrategyChoice(tf.distribute.TPUStrategy(resolver), "tpu", "tpu", reason)


def multi_worker_strategy(timeout_seconds=None):
    """MultiWorkerMirroredStrategy from TF_CONFIG, ring all-reduce (works on CPU and GPU).

    Args:
        timeout_seconds: abort a collective that waits longer than this (a dead peer); None waits
            for the cluster health check alone (peers are probed every 30 s).
    """
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING,
        timeout_seconds=timeout_seconds,
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _multi_worker(tf_config, reason="requested", timeout_seconds=None):
    task = tf_config["task"]
    strategy = multi_worker_strategy(timeout_seconds)
    device = "gpu" if visible_gpus() else "cpu"
    return StrategyChoice(strategy, "multi_worker", device, reason, is_chief=is_chief_task(tf_config),
                          task=f"{task['type']}:{task['index']}")


def choose_strategy(name="auto", tpu=None, environ=None, collective_timeout=None):
    """The StrategyChoice for `--strategy name`; call before TensorFlow runs any op.

    Args:
        name: one of `STRATEGIES`.
        tpu: `--tpu` (a TPU name or grpc:// address), used by `tpu` and `auto`.
        environ: the environment to read TF_CONFIG and TPU variables from (default os.environ).
        collective_timeout: seconds after which a multi-worker collective is aborted.
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}.")
    env = environ if environ is not None else os.environ
    tf_config = tf_config_from_env(env)  # validated even for other strategies: a bad TF_CONFIG is a mistake
    if name == "one_device":
        return _one_device()
    if name == "mirrored":
        return _mirrored()
    if name == "tpu":
        return _tpu(tpu_name_from_env(tpu, env) or "")
    if name == "multi_worker":
        if tf_config is None:
            raise UserError("--strategy multi_worker needs TF_CONFIG naming the cluster (see docs/distributed.md), "
                            "or start local workers with `tl-app launch --workers N RECIPE`.")
        return _multi_worker(tf_config, timeout_seconds=collective_timeout)
    return _auto(tpu, env, tf_config, collective_timeout)


def _auto(tpu, env, tf_config, collective_timeout):
    tpu_name = tpu_name_from_env(tpu, env)
    if tpu:  # named on the command line: a TPU was asked for, so no other device stands in for it
        return _tpu(tpu, reason=f"auto: TPU {tpu!r} resolved", where=f"--tpu {tpu}",
                    hint="check the name (or grpc:// address), or leave --tpu out to train on this machine's devices")
    if tpu_name is not None:
        try:
            return _tpu(tpu_name, reason=f"auto: TPU {tpu_name!r} resolved")
        except UserError as exc:
            log.warn(f"--strategy auto: {exc} Falling back to the other strategies.")
    if tf_config is not None:
        return _multi_worker(tf_config, reason="auto: TF_CONFIG names a cluster", timeout_seconds=collective_timeout)
    gpus = visible_gpus()
    if len(gpus) > 1:
        return _mirrored(reason=f"auto: {len(gpus)} GPUs visible")
    return _one_device(reason=f"auto: {len(gpus)} GPU(s), no TPU, no TF_CONFIG")


def is_tpu(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.TPUStrategy)


def with_data_sharding(dataset):
    """Shard by element (DATA): in-memory data has no files to split between workers."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def distribute_dataset(strategy, batched_dataset):
    """A distributed dataset: each global batch split across the replicas (and workers)."""
    return strategy.experimental_distribute_dataset(with_data_sharding(batched_dataset))


def configure_numerics(cfg, choice):
    """Seeds and op determinism, after the strategy exists (multi-worker needs TensorFlow untouched until then).

    Clears Keras' session first, so every run names its layers the same (`--init-from` matches weights by
    name). The float policy comes later (`pipeline.prepare.set_float_policy`, once the data says the workload).
    """
    import keras

    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(cfg.seed)
    set_op_determinism(cfg.deterministic)


def set_op_determinism(on):
    """TensorFlow's op determinism on or off, as a run's `deterministic` says.

    It is process-wide: a run after a deterministic one in the same process (a tune's trials, the API)
    would otherwise inherit it. TensorFlow exports only the switch on; the switch off is its own, unexported.
    """
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    if on:
        tf.config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()
