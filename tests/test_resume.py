"""Kill a run (SIGKILL, mid-epoch, in either phase), resume it, and start runs from an export."""
import json
import os
import subprocess
import sys

import pytest

from helpers import KILL_AT_PRELUDE
from test_engine import _steps

# `tl-app` with a two-phase recipe (a head on cached features, then the whole model with a
# warmup + linear schedule) and, when KILL_AT=epoch:batch is set, a SIGKILL at that batch
# (batch -1: at the end of the epoch, after TensorBoard logged it, before its checkpoint).
SCRIPT = KILL_AT_PRELUDE + r"""
import sys
import keras
from tl_app.recipe import FeatureCache, Phase
from tl_app.recipes.digits import Digits
from tl_app.registry import register

@register("two_phase_digits")
class TwoPhaseDigits(Digits):
    def build_model(self, data):
        model = super().build_model(data)
        self.hidden = model.layers[3]
        features = keras.Model(model.input, model.layers[4].output)
        head_in = keras.Input(features.output.shape[1:])
        self.cache = FeatureCache(extractor=features, head=keras.Model(head_in, model.layers[-1](head_in)))
        return model

    def phases(self, model):
        def freeze(m):
            self.hidden.trainable = False
        def unfreeze(m):
            self.hidden.trainable = True
        return [Phase("head", 2, 1e-2, prepare=freeze, feature_cache=self.cache, augment=False),
                Phase("fine_tune", 3, 1e-3, prepare=unfreeze,
                      options={"lr_schedule": "linear", "warmup_fraction": 0.2, "optimizer": "adamw",
                               "weight_decay": 0.01})]

from tl_app.cli import main
main(sys.argv[1:])
"""

ARGS = ["run", "two_phase_digits", "--batch-size", "16", "--set", "deterministic=true"]


def _start(workdir, *args, kill_at=None, env_extra=None):
    """Start `tl-app ARGS` (the script above) in `workdir`; returns the Popen (text pipes)."""
    script = workdir / "tl_app_script.py"
    if not script.exists():  # written once: a process started before may be reading it
        script.write_text(SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env_extra or {}))
    env.pop("KILL_AT", None)
    if kill_at:
        env["KILL_AT"] = kill_at
    return subprocess.Popen([sys.executable, str(script), *args], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc, timeout=180):
    """Wait for a `_start`ed process; returns it as a CompletedProcess."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _tl_app(workdir, *args, kill_at=None):
    return _finish(_start(workdir, *args, kill_at=kill_at))


def _learning_rates(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(f"{run_dir}/train")
    acc.Reload()
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors("epoch_learning_rate")}


def test_sigkill_in_each_phase_then_resume_finishes_the_run(workdir, tmp_path_factory, request):
    # The uninterrupted reference run the resumed one is compared with at the end: independent of it (its own
    # directory and feature store), so it runs meanwhile, alongside the kills and resumes.
    ref_dir = tmp_path_factory.mktemp("reference")
    started = _start(ref_dir, *ARGS, "--run-id", "ref", "--no-export",
                     env_extra={"TL_APP_FEATURE_CACHE": str(tmp_path_factory.mktemp("reference_features"))})
    request.addfinalizer(lambda: started.poll() is None and started.kill())  # on a failure before its end
    killed = _tl_app(workdir, *ARGS, "--run-id", "k", kill_at="1:5")  # head phase (cached features), 2nd epoch
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = workdir / "runs" / "two_phase_digits" / "k"
    state = json.loads((run_dir / "checkpoints" / "checkpoint.json").read_text())["state"]
    assert (state["phase"], state["phase_epochs_done"], state["epoch"]) == (0, 1, 1)
    names = os.listdir(run_dir / "checkpoints")  # the head phase's: the model once, then the head's weights
    assert "base-phase00.npz" in names and "ckpt-epoch00001-phase00-0001+base-phase00.npz" in names, names

    # Fine-tune phase, after TensorBoard logged its 2nd epoch (step 3), before that epoch's checkpoint.
    again = _tl_app(workdir, *ARGS, "--resume", kill_at="3:-1")
    assert again.returncode == -9, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resuming" in again.stdout and "phase 1, 1 of its epochs done" in again.stdout
    state = json.loads((run_dir / "checkpoints" / "checkpoint.json").read_text())["state"]
    assert (state["phase"], state["phase_epochs_done"], state["epoch"]) == (1, 1, 3)
    assert _steps(run_dir) == [0, 1, 2, 3]  # step 3 is logged but will be trained again

    done = _tl_app(workdir, *ARGS, "--run-id", "k")  # an unfinished run named by --run-id continues too
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "phase 2, 1 of its epochs done" in done.stdout
    # Each epoch once, in order (a set would hide an epoch logged twice).
    assert _steps(run_dir) == [0, 1, 2, 3, 4]
    assert _steps(run_dir, "validation") == [0, 1, 2, 3, 4]
    assert _steps(run_dir, tag="phase") == [0, 2]  # each phase's beginning once, resumed or not
    # 5 in train/ (loss, accuracy, macro F1, learning rate, phase), 6 in validation/ (the epoch's loss, accuracy,
    # macro F1, and Keras' evaluation_*_vs_iterations of each)
    assert "removed 11 TensorBoard value(s) logged after the checkpoint: epoch 4 on" in done.stdout
    assert (workdir / "saved_models" / "two_phase_digits" / "1" / "saved_model.pb").is_file()
    assert json.loads((run_dir / "complete.json").read_text())["epochs"] == 5
    assert json.loads((run_dir / "metrics.json").read_text())["accuracy"] > 0.85

    # The schedule continued from the restored optimizer: the same learning rates as an uninterrupted run.
    reference = _finish(started)
    assert reference.returncode == 0, reference.stdout[-2000:] + reference.stderr[-2000:]
    assert _learning_rates(run_dir) == pytest.approx(_learning_rates(ref_dir / "runs" / "two_phase_digits" / "ref"))

    # A complete run is never resumed or overwritten (both asked at once: each only reads the finished run).
    attempts = [_start(workdir, *ARGS, *extra) for extra in (["--resume"], ["--run-id", "k"])]
    for again in map(_finish, attempts):
        assert again.returncode == 2 and "is complete" in again.stderr, again.stderr[-2000:]
        assert again.stderr.count("error:") == 1 and "Traceback" not in again.stderr


def test_a_head_phase_checkpoint_holds_the_head_only_and_loads_as_the_full_model(tmp_path):
    """Partial checkpoints (a head on cached features): the base once, the head's weights per epoch, loaded back
    onto the base; the base goes when no kept checkpoint stands on it."""
    import numpy as np

    from tl_app.engine.checkpoints import CheckpointStore, TrainingState

    store = CheckpointStore(str(tmp_path / "checkpoints"), keep=2)
    full = [np.full((3, 3), 1.0), np.zeros(3), np.full((4, 2), 2.0), np.zeros(2)]  # base 0-1, head 2-3
    base = store.save_base(0, full)
    for epoch in (1, 2, 3):
        head = [np.full((4, 2), 10.0 + epoch), np.full(2, epoch)]
        path = store.save(TrainingState(phase=0, phase_epochs_done=epoch, epoch=epoch), head, [np.ones(1)],
                          base=(base, [2, 3]))
        assert os.path.getsize(path) < os.path.getsize(tmp_path / "checkpoints" / base)
    loaded = store.load()
    assert loaded.state.epoch == 3 and len(loaded.model_weights) == 4
    for got, want in zip(loaded.model_weights, [full[0], full[1], np.full((4, 2), 13.0), np.full(2, 3)]):
        np.testing.assert_array_equal(got, want)
    store.save(TrainingState(phase=1, epoch=4), full)  # the next phase's full checkpoints
    assert base in os.listdir(tmp_path / "checkpoints")  # the epoch-3 checkpoint, still kept, stands on it
    store.save(TrainingState(phase=1, phase_epochs_done=1, epoch=5), full)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [
        "checkpoint.json", "ckpt-epoch00004-phase01-0000.npz", "ckpt-epoch00005-phase01-0001.npz"]


def test_resume_with_other_settings_or_nothing_to_resume(cli, workdir):
    result = cli("run", "digits", "--resume")
    assert result.exit_code == 2 and "no run of digits" in result.output
    assert cli("run", "digits", "--epochs", "1", "--run-id", "a", "--no-export").exit_code == 0
    run_dir = workdir / "runs" / "digits" / "a"
    # As if killed after the last epoch's checkpoint, before the end-of-phase one and the export.
    os.remove(run_dir / "complete.json")
    pointer = json.loads((run_dir / "checkpoints" / "checkpoint.json").read_text())
    pointer["file"], pointer["state"] = "ckpt-epoch00001-phase00-0001.npz", {
        "phase": 0, "phase_epochs_done": 1, "epoch": 1, "early_stopping": {}}
    (run_dir / "checkpoints" / "checkpoint.json").write_text(json.dumps(pointer))
    result = cli("run", "digits", "--epochs", "2", "--resume", "--no-export")
    assert result.exit_code == 2 and "epochs=1 (now 2)" in result.output, result.output
    result = cli("run", "digits", "--epochs", "1", "--resume", "--no-export")
    assert result.exit_code == 0 and "finished before the restart" in result.output, result.output
    assert _steps(run_dir) == [0]  # nothing retrained: its one epoch was done
    assert (run_dir / "complete.json").is_file()


def test_init_from_an_export(cli, workdir):
    assert cli("run", "digits", "--epochs", "3", "--seed", "5").exit_code == 0
    export = workdir / "saved_models" / "digits" / "1"
    assert (export / "assets.extra" / "model.weights.h5").is_file()
    exported = json.loads((export / "assets.extra" / "metrics.json").read_text())

    # Zero epochs: the new run's model is exactly the exported one (same test split, same metrics).
    result = cli("run", "digits", "--epochs", "0", "--seed", "5", "--init-from", str(export), "--no-export",
                 "--run-id", "from-export")
    assert result.exit_code == 0, result.output
    metrics = json.loads((workdir / "runs" / "digits" / "from-export" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(exported["accuracy"])
    assert metrics["loss"] == pytest.approx(exported["loss"], rel=1e-5)

    bad = cli("run", "digits", "--init-from", str(export), "--set", "hidden_units=32", "--no-export")
    assert bad.exit_code == 2 and "do not fit this model" in bad.output, bad.output
    bad = cli("run", "mnist", "--init-from", str(export), "--no-export")
    assert bad.exit_code == 2 and "export is of recipe 'digits'" in bad.output
    bad = cli("run", "digits", "--init-from", str(workdir / "nowhere"))
    assert bad.exit_code == 2 and "no such export directory" in bad.output


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_early_stopping_counters_survive_a_restart(workdir, monkeypatch, loop):
    """learning_rate 0 keeps val_loss flat: patience 2 stops after epoch 3 (index 2) — restart or not."""
    import dataclasses

    import keras

    from tl_app.engine import trainer as train
    from tl_app.recipes.digits import Digits
    from tl_app.pipeline import RunOptions, run_recipe

    class StopAtEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise _Interrupted()

    standard = train.standard_callbacks
    monkeypatch.setattr(train, "standard_callbacks", lambda run_dir: standard(run_dir) + [StopAtEpoch2()])
    cfg = dataclasses.replace(Digits.default_config(), epochs=10, learning_rate=0.0, early_stopping_patience=2)
    options = RunOptions(logdir=str(workdir / "runs"), export=False, loop=loop, strategy="one_device", run_id="es")
    with pytest.raises(_Interrupted):
        run_recipe(Digits(cfg), options)
    state = json.loads((workdir / "runs" / "digits" / "es" / "checkpoints" / "checkpoint.json").read_text())["state"]
    assert state["epoch"] == 2 and state["early_stopping"]["wait"] == 1

    monkeypatch.setattr(train, "standard_callbacks", standard)
    result = run_recipe(Digits(cfg), dataclasses.replace(options, resume=True))
    # With the counters restored the phase stops after epoch index 2; fresh counters would run to index 4.
    assert _steps(result.run_dir) == [0, 1, 2]


# `tl-app` killed (SIGKILL) right after its export is renamed into place, before the run is marked complete,
# holding temporaries of each kind, as a process killed while writing them leaves them.
EXPORT_KILL_SCRIPT = r"""
import os, signal, sys
from tl_app import atomic
from tl_app.engine import feature_store
from tl_app.export import savedmodel

def leave(directory, prefix, suffix=""):
    os.makedirs(directory, exist_ok=True)
    fd, path = atomic.make_temp_file(directory, prefix, suffix)
    os.write(fd, b"x" * 100_000)

export_model = savedmodel.export_model
def export_then_die(model, signatures, model_dir, *args, **kwargs):
    path = export_model(model, signatures, model_dir, *args, **kwargs)
    run_dir = kwargs["run_dir"]
    leave(os.path.join(run_dir, "checkpoints"), atomic.PREFIX, ".npz")
    leave(run_dir, atomic.PREFIX)
    leave(feature_store.default_dir(), feature_store.TEMP_PREFIX, feature_store.TEMP_SUFFIX)
    half_export = atomic.make_temp_dir(model_dir, savedmodel.EXPORT_PREFIX)
    leave(half_export, "variables-")
    os.kill(os.getpid(), signal.SIGKILL)
savedmodel.export_model = export_then_die

from tl_app.cli import main
main(sys.argv[1:])
"""


def test_sigkill_after_the_export_rename_resumes_without_a_second_version(workdir, cli, feature_store_dir):
    from tl_app import atomic
    from tl_app.engine.feature_store import FeatureStore

    (workdir / "kill.py").write_text(EXPORT_KILL_SCRIPT)
    args = ["run", "digits", "--epochs", "1", "--run-id", "k"]
    killed = subprocess.run([sys.executable, "kill.py", *args], cwd=workdir, capture_output=True, text=True,
                            timeout=180, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    models, run_dir = workdir / "saved_models" / "digits", workdir / "runs" / "digits" / "k"
    assert (models / "1" / "saved_model.pb").is_file() and not (run_dir / "complete.json").exists()
    left = [models, run_dir, run_dir / "checkpoints", feature_store_dir]
    assert all(any(n.startswith(".tmp-") for n in os.listdir(folder)) for folder in left)
    _, live = atomic.make_temp_file(str(models))  # a temporary of a live process (this one) is never removed

    result = cli(*args, "--resume")
    assert result.exit_code == 0, result.output
    assert f"exported {os.path.join('saved_models', 'digits', '1')} before the restart" in result.output
    assert sorted(n for n in os.listdir(models) if not n.startswith(".")) == ["1"]  # no second version
    assert json.loads((run_dir / "complete.json").read_text())["export"] == os.path.join("saved_models", "digits", "1")
    assert json.loads((models / "1" / "assets.extra" / "run.json").read_text())["run_dir"] == str(run_dir.resolve())
    # The killed run's temporaries are gone, with the space they held said in the log.
    assert result.output.count("by killed processes (0.1 MB freed)") == 3, result.output
    FeatureStore().load("any")  # the next store to open the directory removes its killed writers' temporaries
    assert [n for folder in left for n in os.listdir(folder) if n.startswith(".tmp-")] == [os.path.basename(live)]
