"""The quality gate: bad conditions cost seconds, a missed gate publishes nothing, a retry round can meet it.

(A gate that passes, and its decision in the export's metrics.json: tests/test_evaluate_run.py.)
"""
import json
import os

import keras
import pytest

from helpers import assert_one_line_error


def test_a_bad_gate_stops_the_run_before_training(cli, workdir):
    assert_one_line_error(cli("run", "digits", "--gate", "accuracy=0.9"), "'accuracy=0.9' is not a condition",
                          "accuracy>=0.9,f1_macro>=published-0.005")
    line = assert_one_line_error(cli("run", "digits", "--gate", "accuracy>=0.9,f1>=0.8"), "no metric 'f1'",
                                 "accuracy, loss, balanced_accuracy", "f1_macro", "recall/<class>")
    assert "<class> one of 0, 1, 2" in line
    assert_one_line_error(cli("run", "digits", "--gate-retries", "2"), "--gate-retries 2", "together with --gate")
    assert not (workdir / "runs").exists()  # stopped before the run directory


def test_a_missed_gate_publishes_nothing_and_keeps_a_loadable_model(cli, workdir):
    import tensorflow as tf

    first = cli("run", "digits", "--epochs", "2")
    assert first.exit_code == 0, first.output
    published = json.loads((workdir / "saved_models" / "digits" / "1" / "assets.extra" / "metrics.json").read_text())
    result = cli("run", "digits", "--epochs", "2", "--run-id", "refused", "--gate", "accuracy>=published+0.5")
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    expected = f"accuracy {published['accuracy']:.4f}".rstrip("0")
    assert len(errors) == 1 and errors[0].startswith("error: gate failed: " + expected)
    assert f"< published {published['accuracy']:.4f}".rstrip("0") in errors[0] and "+ 0.5 = " in errors[0]
    assert "comparing with the published version saved_models/digits/1" in result.output
    assert sorted(os.listdir(workdir / "saved_models" / "digits")) == [".export.lock", "1"]  # no new version
    run_dir = workdir / "runs" / "digits" / "refused"
    gate = json.loads((run_dir / "gate.json").read_text())
    assert gate["passed"] is False and gate["published"]["version"] == 1
    assert gate["rejected"] == os.path.join("runs", "digits", "refused", "rejected", "1")
    loaded = tf.saved_model.load(str(run_dir / "rejected" / "1"))
    out = loaded.signatures["serving_default"](pixels=tf.zeros([2, 8, 8]))
    assert out["probabilities"].shape == (2, 10)
    kept = json.loads((run_dir / "rejected" / "1" / "assets.extra" / "metrics.json").read_text())
    assert kept["gate"]["passed"] is False and "## Quality gate" in (run_dir / "report.md").read_text()
    # The refused run is finished: it is not resumed (its model stays as it was).
    assert_one_line_error(cli("run", "digits", "--run-id", "refused", "--resume"), "is complete")


class _Interrupted(Exception):
    pass


def test_a_retry_round_meets_the_gate_and_a_run_killed_inside_it_resumes_there(workdir, monkeypatch, capsys):
    import tl_app
    from tl_app.engine import trainer as train

    class StopInRound(keras.callbacks.Callback):
        """Stops the run as the retry round's second epoch (epoch index 3) begins."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise _Interrupted()

    standard = train.standard_callbacks
    monkeypatch.setattr(train, "standard_callbacks", lambda run_dir: standard(run_dir) + [StopInRound()])
    settings = dict(epochs=2, learning_rate=3e-4, run_id="retry", gate="accuracy>=0.73", gate_retries=2)
    with pytest.raises(_Interrupted):
        tl_app.run("digits", **settings)
    first = capsys.readouterr().out
    assert "gate missed (accuracy 0." in first and "back to fine-tuning, round 1 of 2" in first
    assert "gate retry round 1: phase 'gate_retry_1', 2 more epoch(s) of 'train' at learning rate 0.00015" in first
    assert not (workdir / "saved_models" / "digits").exists()  # nothing published

    monkeypatch.setattr(train, "standard_callbacks", standard)
    result = tl_app.run("digits", resume=True, **settings)
    again = capsys.readouterr().out
    assert "resuming gate retry round 1" in again and "gate passed" in again
    assert result.metrics["accuracy"] >= 0.73 and result.export_path.endswith(os.path.join("digits", "1"))
    run_dir = workdir / "runs" / "digits" / "retry"
    gate = json.loads((run_dir / "gate.json").read_text())
    assert gate["passed"] and [r["round"] for r in gate["rounds"]] == [1] and gate["rounds"][0]["passed"]
    exported = json.loads((workdir / "saved_models" / "digits" / "1" / "assets.extra" / "metrics.json").read_text())
    assert exported["gate"]["rounds"] == gate["rounds"]
    # TensorBoard: the round is a phase (index 1), with its own phase-end look and test evaluation.
    import tensorflow as tf

    from test_evaluate_run import _events

    phases = {e.step: tf.make_ndarray(e.tensor_proto).item() for e in _events(run_dir, "train").Tensors("epoch_phase")}
    assert phases == {0: 0, 1: 0, 2: 1, 3: 1}
    assert [e.step for e in _events(run_dir, "validation").Tensors("confusion_matrix")] == [1, 3]
    assert [e.step for e in _events(run_dir, "test").Tensors("evaluation/accuracy")] == [1, 3]
    assert "2: gate_retry_1" not in (run_dir / "report.md").read_text()  # the report lists phases by name
    assert "phases: train, gate_retry_1" in (run_dir / "report.md").read_text()
