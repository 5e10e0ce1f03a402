"""Real distributed training on this CPU: mirrored over two logical devices, multi-worker on 127.0.0.1.

Each test runs fresh processes: logical devices must be configured before
TensorFlow initialises, and multi-worker needs one process per worker.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import run_python, run_tl_app

# A digits model with a layer that fails the step when a replica sees more than LIMIT examples.
PROBE_SCRIPT = r"""
import dataclasses, json, sys
import tensorflow as tf
strategy, limit, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if strategy == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tl_app.recipes.digits import Digits
from tl_app.pipeline import RunOptions, run_recipe

class PerReplicaBatchProbe(keras.layers.Layer):
    def __init__(self, limit, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit
    def call(self, x):
        tf.debugging.assert_less_equal(tf.shape(x)[0], self.limit, message="per-replica batch too large")
        return x

class ProbedDigits(Digits):
    name = "probed_digits"
    def build_model(self, data):
        model = super().build_model(data)
        inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
        return keras.Model(inputs, model(PerReplicaBatchProbe(limit)(inputs)))

cfg = dataclasses.replace(Digits.default_config(), epochs=epochs, batch_size=32, learning_rate=0.005)
result = run_recipe(ProbedDigits(cfg), RunOptions(strategy=strategy, export=False))
print("RESULT " + json.dumps({"metrics": result.metrics,
                              "distribution": json.load(open(result.run_dir + "/config.json"))["distribution"]}))
"""


def _result(proc):
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_mirrored_over_two_logical_cpus_splits_the_global_batch(workdir):
    proc = run_python(PROBE_SCRIPT.replace("sys.argv[1], int(sys.argv[2]), int(sys.argv[3])", '"mirrored", 16, 2'),
                      timeout=240)
    result = _result(proc)
    assert result["distribution"] == {"strategy": "mirrored", "replicas": 2, "device": "cpu",
                                      "global_batch_size": 32, "per_replica_batch_size": 16}
    assert "global batch 32 = 16 per replica" in proc.stdout
    assert result["metrics"]["accuracy"] > 0.85


def test_the_batch_probe_fails_when_a_replica_gets_the_whole_batch(workdir):
    """The probe above can fail: on one device the replica sees all 32 examples."""
    proc = run_python(PROBE_SCRIPT.replace("sys.argv[1], int(sys.argv[2]), int(sys.argv[3])", '"one_device", 16, 1'),
                      timeout=120)
    assert proc.returncode != 0 and "per-replica batch too large" in proc.stderr + proc.stdout


# Imported by every worker process (PYTHONPATH): saves the weights each worker ends with, before export.
SITECUSTOMIZE = r"""
import json, os
if os.environ.get("TL_APP_TEST_WEIGHTS_DIR"):
    import numpy as np
    import tl_app.export.savedmodel as export
    _export_model = export.export_model
    def export_model(model, *args, **kwargs):
        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        path = os.path.join(os.environ["TL_APP_TEST_WEIGHTS_DIR"], "worker-%d.npz" % index)
        np.savez(path, *model.get_weights())
        return _export_model(model, *args, **kwargs)
    export.export_model = export_model
"""

RUN_ARGS = ["--epochs", "4", "--batch-size", "64", "--set", "learning_rate=0.01", "--seed", "3"]


def test_multi_worker_launch_trains_like_one_device_and_only_the_chief_exports(workdir):
    from tl_app.recipes.digits import Digits
    from tl_app.pipeline import RunOptions, run_recipe

    (workdir / "hook").mkdir()
    (workdir / "hook" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (workdir / "weights").mkdir()
    (workdir / "tmp").mkdir()
    env = {"PYTHONPATH": str(workdir / "hook"), "TL_APP_TEST_WEIGHTS_DIR": str(workdir / "weights"),
           "TMPDIR": str(workdir / "tmp")}
    started = time.time()
    proc = run_tl_app(["launch", "--workers", "2", "digits", *RUN_ARGS, "--run-id", "mw"], cwd=workdir,
                      timeout=300, env_extra=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"multi-worker launch: {time.time() - started:.1f} s")

    # Both workers trained the same replicated model.
    w0, w1 = np.load(workdir / "weights" / "worker-0.npz"), np.load(workdir / "weights" / "worker-1.npz")
    assert len(w0.files) == len(w1.files) == 4
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    # Only the chief's export and run remain; the other worker's scratch directory is gone.
    assert [n for n in os.listdir(workdir / "saved_models" / "digits") if not n.startswith(".export")] == ["1"]
    assert os.listdir(workdir / "runs" / "digits") == ["mw"]
    assert os.listdir(workdir / "tmp") == []  # the worker's scratch run and export, and the launch logs, are gone
    run_dir = workdir / "runs" / "digits" / "mw"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["distribution"]["strategy"] == "multi_worker" and config["distribution"]["replicas"] == 2
    assert config["distribution"]["per_replica_batch_size"] == 32
    from test_engine import _steps

    assert _steps(str(run_dir)) == list(range(4)) and _steps(str(run_dir), "validation") == list(range(4))

    # Same accuracy band as one device with the same settings.
    multi = json.loads((run_dir / "metrics.json").read_text())["accuracy"]
    cfg = dataclasses.replace(Digits.default_config(), epochs=4, batch_size=64, learning_rate=0.01, seed=3)
    single = run_recipe(Digits(cfg), RunOptions(logdir=str(workdir / "single"), export=False,
                                                strategy="one_device")).metrics["accuracy"]
    assert multi > 0.85 and abs(multi - single) < 0.06, (multi, single)


def _children(pid):
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def _worker_index(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    return json.loads(env[b"TF_CONFIG"])["task"]["index"]


def _wait_for_checkpoint(run_dir, epoch, proc, timeout=180):
    pointer = os.path.join(run_dir, "checkpoints", "checkpoint.json")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before it was killed"
        if os.path.exists(pointer):
            with open(pointer) as f:
                if json.load(f)["state"]["epoch"] >= epoch:
                    return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of epoch {epoch} in {timeout} s")


def test_a_dead_worker_stops_the_cluster_and_the_run_resumes(workdir):
    exe = os.path.join(os.path.dirname(sys.executable), "tl-app")
    # Killed once 2 epochs are checkpointed: 3 epochs (~1 s each) and the export are still to go.
    args = ["launch", "--workers", "2", "digits", "--epochs", "5", "--batch-size", "64", "--run-id", "r"]
    (workdir / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(workdir / "tmp"))
    launcher = subprocess.Popen([exe, *args], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
    try:
        _wait_for_checkpoint(str(workdir / "runs" / "digits" / "r"), 2, launcher)
        workers = _children(launcher.pid)
        (victim,) = [p for p in workers if _worker_index(p) == 1]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        out, err = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert time.time() - killed_at < 30  # bounded: the launcher stops the others at once
    assert launcher.returncode == 1
    assert "worker 1 was killed by SIGKILL" in err and "--resume" in err
    assert all(not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split()[2] == "Z" for p in workers)

    # The killed worker could not clean up; the launch logs are kept for the user, named in the error.
    assert [n for n in os.listdir(workdir / "tmp") if n.startswith("tl-app-launch-")] and str(workdir / "tmp") in err

    resumed = run_tl_app([*args[:-2], "--resume"], cwd=workdir, timeout=300, env_extra={"TMPDIR": str(workdir / "tmp")})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming runs/digits/r from" in resumed.stdout
    from test_engine import _steps

    steps = _steps(str(workdir / "runs" / "digits" / "r"))
    assert steps == list(range(5))  # each epoch once (a set would hide an epoch logged twice)
    assert (workdir / "saved_models" / "digits" / "1" / "saved_model.pb").is_file()


IMAGE_SCRIPT = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tl_app.cli import main
main(sys.argv[1:])
"""


def test_mirrored_trains_a_tiny_image_recipe_through_both_phases(workdir):
    from PIL import Image

    from tl_app import registry

    if "image_folder" not in registry.names():
        pytest.skip("the image recipes are not available")
    rng = np.random.default_rng(0)
    for name, color in {"red": (200, 40, 40), "blue": (40, 40, 200)}.items():
        (workdir / "images" / name).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(0, 20, (40, 40, 3)) + color, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(workdir / "images" / name / f"{i}.png")
    (workdir / "run.py").write_text(IMAGE_SCRIPT)
    proc = subprocess.run(
        [sys.executable, "run.py", "run", "image_folder", "--data-dir", "images", "--strategy", "mirrored",
         "--epochs", "1", "--batch-size", "8", "--run-id", "img", "--set", "alpha=0.35", "--set", "image_size=32",
         "--set", "weights=none", "--set", "fine_tune_epochs=1", "--no-export"],  # image exports are tested elsewhere
        cwd=workdir, capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "global batch 8 = 4 per replica" in proc.stdout
    run_dir = workdir / "runs" / "image_folder" / "img"
    assert json.loads((run_dir / "config.json").read_text())["distribution"]["replicas"] == 2
    from test_engine import _steps

    assert _steps(str(run_dir)) == [0, 1]  # head phase (cached features), then fine-tune
    assert json.loads((run_dir / "complete.json").read_text())["epochs"] == 2
