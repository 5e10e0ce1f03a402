"""Strategy choice (mocked devices and TPU resolver), TF_CONFIG validation, the launcher's pieces, bad input."""
import json

import pytest

from tl_app.engine import strategies as distribute
from tl_app.errors import UserError


class _FakeDevice:
    def __init__(self, name):
        self.name = name


class _FakeStrategy:
    """Stands in for a tf.distribute strategy class: records what it was built with."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.num_replicas_in_sync = len(args[0]) if args and isinstance(args[0], list) else 8


@pytest.fixture
def fake_tf(monkeypatch):
    """No GPUs, one CPU, no TPU, fake strategy classes: the test sets what it needs."""
    import tensorflow as tf

    monkeypatch.setattr(distribute, "visible_gpus", lambda: [])
    monkeypatch.setattr(distribute, "visible_cpus", lambda: [_FakeDevice("/device:CPU:0")])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", _FakeStrategy)
    monkeypatch.setattr(tf.distribute, "TPUStrategy", _FakeStrategy)
    monkeypatch.setattr(distribute, "multi_worker_strategy", lambda timeout_seconds=None: _FakeStrategy(["w0", "w1"]))

    def no_tpu(name):
        raise ValueError(f"no TPU called {name!r}")

    monkeypatch.setattr(distribute, "connect_tpu", no_tpu)
    monkeypatch.setattr(distribute.os.path, "exists", lambda path: False)  # no /dev/accel0: not a TPU VM
    return monkeypatch


TF_CONFIG = json.dumps({"cluster": {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"]}, "task": {"type": "worker", "index": 1}})


def test_auto_is_one_device_on_a_plain_cpu(fake_tf):
    choice = distribute.choose_strategy("auto", environ={})
    assert (choice.name, choice.device, choice.replicas) == ("one_device", "cpu", 1)


def test_auto_is_mirrored_over_several_gpus(fake_tf):
    fake_tf.setattr(distribute, "visible_gpus", lambda: [_FakeDevice("/device:GPU:0"), _FakeDevice("/device:GPU:1")])
    choice = distribute.choose_strategy("auto", environ={})
    assert (choice.name, choice.device, choice.replicas) == ("mirrored", "gpu", 2)
    assert choice.strategy.args[0] == ["/device:GPU:0", "/device:GPU:1"]
    assert "2 GPUs visible" in choice.reason


def test_one_gpu_is_one_device(fake_tf):
    fake_tf.setattr(distribute, "visible_gpus", lambda: [_FakeDevice("/device:GPU:0")])
    choice = distribute.choose_strategy("auto", environ={})
    assert (choice.name, choice.device) == ("one_device", "gpu")


def test_auto_is_multi_worker_when_tf_config_names_a_cluster(fake_tf):
    choice = distribute.choose_strategy("auto", environ={"TF_CONFIG": TF_CONFIG})
    assert (choice.name, choice.task, choice.is_chief) == ("multi_worker", "worker:1", False)


def test_auto_prefers_a_resolving_tpu(fake_tf):
    resolved = []
    fake_tf.setattr(distribute, "connect_tpu", lambda name: resolved.append(name) or "resolver")
    fake_tf.setattr(distribute, "visible_gpus", lambda: [_FakeDevice("/device:GPU:0"), _FakeDevice("/device:GPU:1")])
    choice = distribute.choose_strategy("auto", environ={"TPU_NAME": "my-tpu", "TF_CONFIG": TF_CONFIG})
    assert (choice.name, choice.device) == ("tpu", "tpu") and resolved == ["my-tpu"]
    assert choice.strategy.args == ("resolver",)
    assert distribute.choose_strategy("auto", tpu="flag-tpu", environ={}).name == "tpu" and resolved[-1] == "flag-tpu"


def test_auto_on_a_tpu_vm_resolves_local(fake_tf):
    resolved = []
    fake_tf.setattr(distribute, "connect_tpu", lambda name: resolved.append(name) or "resolver")
    assert distribute.choose_strategy("auto", environ={"TPU_ACCELERATOR_TYPE": "v5litepod-8"}).name == "tpu"
    assert resolved == ["local"]


def test_auto_logs_the_fallback_when_the_tpu_does_not_resolve(fake_tf, capsys):
    choice = distribute.choose_strategy("auto", environ={"TPU_NAME": "gone"})
    assert choice.name == "one_device"
    assert "no TPU resolves for 'gone'" in capsys.readouterr().err


def test_explicit_tpu_without_one_fails(fake_tf):
    with pytest.raises(UserError, match="--strategy tpu: no TPU resolves"):
        distribute.choose_strategy("tpu", environ={})


def test_mirrored_needs_two_devices(fake_tf):
    with pytest.raises(UserError, match="at least two devices.*0 GPU.*1 CPU"):
        distribute.choose_strategy("mirrored", environ={})
    fake_tf.setattr(distribute, "visible_cpus", lambda: [_FakeDevice("/device:CPU:0"), _FakeDevice("/device:CPU:1")])
    choice = distribute.choose_strategy("mirrored", environ={})
    assert (choice.name, choice.device, choice.replicas) == ("mirrored", "cpu", 2)


def test_unknown_strategy_and_multi_worker_without_cluster(fake_tf):
    with pytest.raises(UserError, match="unknown strategy 'hogwild'"):
        distribute.choose_strategy("hogwild", environ={})
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        distribute.choose_strategy("multi_worker", environ={})


@pytest.mark.parametrize("raw, field", [
    ("{not json", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', "'cluster'"),
    ('{"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}}', "'cluster.worker'"),
    ('{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}', "'cluster.worker'"),
    ('{"cluster": {"worker": ["h:1"]}}', "'task'"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}', "'task.type'"),
    ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 2}}', "'task.index'"),
    ('{"cluster": {"worker": ["h:1"], "ps": ["h:2"]}, "task": {"type": "worker", "index": 0}}', "'cluster.ps'"),
])
def test_malformed_tf_config_names_the_field(raw, field):
    with pytest.raises(UserError, match="TF_CONFIG") as info:
        distribute.parse_tf_config(raw)
    assert field in str(info.value)


def test_chief_is_worker_zero_or_the_chief_job():
    workers = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}
    assert distribute.is_chief_task(workers)
    assert not distribute.is_chief_task({**workers, "task": {"type": "worker", "index": 1}})
    with_chief = {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}
    assert not distribute.is_chief_task(with_chief)
    assert distribute.is_chief_task({**with_chief, "task": {"type": "chief", "index": 0}})


def test_global_batch_splits_evenly_across_replicas():
    assert distribute.per_replica_batch(64, 4) == 16
    with pytest.raises(UserError, match="multiple of the 3 replicas"):
        distribute.per_replica_batch(32, 3)


def test_launcher_ports_and_tf_config():
    from tl_app.engine.launch import free_ports, tf_config

    ports = free_ports(3)
    assert len(set(ports)) == 3
    config = distribute.parse_tf_config(tf_config([f"127.0.0.1:{p}" for p in ports], 2))
    assert config["task"] == {"type": "worker", "index": 2} and len(config["cluster"]["worker"]) == 3


# ---- the same mistakes through the CLI: one line, exit 2 -----------------------

def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in errors[0]


def test_cli_bad_strategy_inputs(cli, workdir, monkeypatch):
    _one_line_error(cli("run", "digits", "--strategy", "fast"), "unknown strategy 'fast'")
    _one_line_error(cli("run", "digits", "--strategy", "mirrored", "--no-export"), "at least two devices")
    _one_line_error(cli("run", "digits", "--strategy", "tpu", "--no-export"), "no TPU resolves")
    _one_line_error(cli("run", "digits", "--strategy", "multi_worker"), "needs TF_CONFIG")
    _one_line_error(cli("run", "digits", "--set", "optimizer=lamb"), "--set optimizer=lamb: expected one of adam, adamw, sgd")
    _one_line_error(cli("run", "digits", "--set", "lr_schedule=cyclic"), "--set lr_schedule=cyclic: expected one of")
    _one_line_error(cli("run", "digits", "--set", "mixed_precision=fp8"), "mixed_precision=fp8")
    _one_line_error(cli("launch", "--workers", "2", "digits", "--strategy", "mirrored"), "launch sets --strategy")
    _one_line_error(cli("launch", "--workers", "2", "digits", "--set", "optimizer=lamb"), "--set optimizer=lamb")
    _one_line_error(cli("launch", "--workers", "0", "digits"), "--workers 0")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker"}}')
    _one_line_error(cli("run", "digits"), "TF_CONFIG field 'task.index'")
    assert not (workdir / "runs").exists()  # every one failed before creating a run


def test_a_tpu_named_by_flag_that_does_not_resolve_is_an_error_not_a_fallback(monkeypatch, cli, workdir):
    def no_tpu(name):
        raise ValueError(f"no TPU called {name!r}")

    monkeypatch.setattr(distribute, "connect_tpu", no_tpu)
    with pytest.raises(UserError, match="--tpu gone: no TPU resolves for 'gone' .*leave --tpu out"):
        distribute.choose_strategy("auto", tpu="gone", environ={})
    _one_line_error(cli("run", "digits", "--tpu", "gone", "--no-export"), "--tpu gone: no TPU resolves")
    assert not (workdir / "runs").exists()
