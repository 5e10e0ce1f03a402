"""What a finished run shows: files, report, TensorBoard records, `tl-app evaluate` and `tl-app tensorboard`.

One digits run (3 epochs, a gate it meets) and one tiny image_folder run (32 px, head + fine-tune) serve
the whole module.
"""
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import assert_one_line_error
from test_images import calibrated_weights  # noqa: F401  (module fixture: tiny MobileNetV2 weights)

COLORS = {"red": (200, 40, 40), "green": (40, 190, 40), "blue": (40, 40, 200)}


def _cli(*args):
    from tl_app.cli import cli as group

    return CliRunner().invoke(group, [str(a) for a in args], prog_name="tl-app")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("digits_eval")
    result = _cli("run", "digits", "--epochs", "3", "--logdir", base / "runs", "--export-dir", base / "saved_models",
                  "--run-id", "first", "--gate", "accuracy>=0.5,f1_macro>=0.5")
    assert result.exit_code == 0, result.output
    return base, base / "runs" / "digits" / "first", result.output


def write_color_pngs(root, classes, per_class=12, size=32, seed=0):
    """Class folders of noisy coloured PNGs already at `size` px (the loader's resize is then an identity)."""
    rng = np.random.default_rng(seed)
    for name in classes:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(0, 30, (size, size, 3)) + COLORS.get(name, (120, 120, 120)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(os.path.join(root, name, f"{i}.png"))
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, calibrated_weights):  # noqa: F811
    base = tmp_path_factory.mktemp("image_eval")
    data = write_color_pngs(str(base / "colors"), list(COLORS))
    result = _cli("run", "image_folder", "--data-dir", data, "--set", "alpha=0.35", "--set", "image_size=32",
                  "--set", f"weights={calibrated_weights}", "--epochs", "2", "--set", "fine_tune_epochs=0",
                  "--set", "learning_rate=0.01", "--batch-size", "8", "--logdir", base / "runs",
                  "--export-dir", base / "saved_models", "--run-id", "img")
    assert result.exit_code == 0, result.output
    return base, base / "runs" / "image_folder" / "img", data


def _events(run_dir, sub=""):
    """TensorBoard's own event reader over one TensorBoard run (a directory of event files)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(os.path.join(run_dir, sub)), size_guidance={"tensors": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def _plugin_tags(accumulator):
    """{plugin name: sorted tags} of the tensor summaries (TF2 writes scalars, images, text and hparams as tensors)."""
    out = {}
    for tag in accumulator.Tags()["tensors"]:
        out.setdefault(accumulator.SummaryMetadata(tag).plugin_data.plugin_name, []).append(tag)
    return {k: sorted(v) for k, v in out.items()}


# ---- the run's files ------------------------------------------------------------------------------
def test_a_run_writes_metrics_predictions_figures_and_a_report(digits_run):
    from tl_app.evaluate.metrics import metric_names

    base, run_dir, output = digits_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == sorted(metric_names([str(d) for d in range(10)]))
    assert 0.5 < metrics["accuracy"] <= 1 and metrics["f1_macro"] > 0.5 and 0 <= metrics["ece"] < 1
    rows = list(csv.DictReader(open(run_dir / "predictions.csv")))
    assert len(rows) == metrics["support/0"] + sum(metrics[f"support/{d}"] for d in range(1, 10))
    assert np.mean([r["true"] == r["predicted"] for r in rows]) == pytest.approx(metrics["accuracy"])
    assert rows[5]["input"] == "5"  # digits are arrays: the reference is the index
    report = (run_dir / "report.md").read_text()
    for png in ("training_curves.png", "confusion_matrix.png", "reliability.png", "examples.png"):
        assert f"]({png})" in report
        assert Image.open(run_dir / png).size[0] > 300  # a real picture
    assert "| epochs | 3 | 30 |" in report and "## Most confident mistakes" in report
    assert "## Quality gate: accuracy>=0.5,f1_macro>=0.5" in report and "The run **passed**." in report
    # The printed tables, and the gate's decision in gate.json and in the export's metrics.json.
    assert "test metrics per class" in output and "gate passed" in output
    exported = json.loads((base / "saved_models" / "digits" / "1" / "assets.extra" / "metrics.json").read_text())
    assert exported["gate"]["passed"] and exported["accuracy"] == metrics["accuracy"]
    assert json.loads((run_dir / "gate.json").read_text())["conditions"][0]["result"] == "passed"


def test_event_files_hold_scalars_images_text_graph_and_hparams(digits_run):
    _, run_dir, _ = digits_run
    train = _plugin_tags(_events(run_dir, "train"))
    assert {"epoch_loss", "epoch_accuracy", "epoch_f1_macro", "epoch_learning_rate", "epoch_phase"} <= set(
        train["scalars"])
    assert train["text"] == ["phase"]
    validation = _plugin_tags(_events(run_dir, "validation"))
    assert "epoch_f1_macro" in validation["scalars"]
    assert validation["images"] == ["confusion_matrix"] and validation["text"] == ["per_class"]  # phase end
    test = _events(run_dir, "test")
    tags = _plugin_tags(test)
    assert {"evaluation/accuracy", "evaluation/loss", "evaluation/f1_macro", "evaluation/ece"} <= set(tags["scalars"])
    assert tags["images"] == ["confusion_matrix", "examples", "reliability"]
    assert set(tags["text"]) == {"per_class", "gate"}
    assert test.Tags()["graph"] and len(test.Graph().node) > 10
    assert [e.step for e in test.Tensors("evaluation/accuracy")] == [2]  # the last epoch
    root = _plugin_tags(_events(run_dir))
    assert "_hparams_/session_start_info" in root["hparams"]
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = _events(run_dir).SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["recipe"].string_value == "digits" and hparams["epochs"].number_value == 3


# ---- tl-app evaluate ----------------------------------------------------------------------------------
def test_evaluate_reproduces_the_runs_test_accuracy_for_digits(digits_run, tmp_path):
    base, run_dir, _ = digits_run
    out = tmp_path / "eval"
    result = _cli("evaluate", base / "saved_models" / "digits", "--output-dir", out)
    assert result.exit_code == 0, result.output
    assert "test metrics per class" in result.output
    run_metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == run_metrics["accuracy"] and metrics["f1_macro"] == run_metrics["f1_macro"]
    assert [r["predicted"] for r in csv.DictReader(open(out / "predictions.csv"))] == [
        r["predicted"] for r in csv.DictReader(open(run_dir / "predictions.csv"))]
    assert sorted(p.name for p in out.iterdir()) == ["confusion_matrix.png", "examples.png", "metrics.json",
                                                       "predictions.csv", "reliability.png", "report.md"]
    again = _cli("evaluate", base / "saved_models" / "digits" / "1", "--output-dir", out)
    assert_one_line_error(again, "--output-dir", "not an empty directory")


def test_evaluate_rejects_what_is_not_an_export(digits_run):
    base, run_dir, _ = digits_run
    assert_one_line_error(_cli("evaluate", run_dir), "not an export", "saved_models/digits/3")
    assert_one_line_error(_cli("evaluate", base / "nowhere"), "no such directory")
    assert_one_line_error(_cli("evaluate", base / "saved_models" / "digits", "--split", "dev"), "--split dev")


def test_evaluate_reproduces_a_tiny_image_model_and_names_class_differences(image_run, tmp_path):
    base, run_dir, data = image_run
    out = tmp_path / "eval"
    result = _cli("evaluate", base / "saved_models" / "image_folder", "--output-dir", out)
    assert result.exit_code == 0, result.output
    run_metrics = json.loads((run_dir / "metrics.json").read_text())
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == run_metrics["accuracy"]
    # Grad-CAM of the export's mistakes, drawn with the recipe's model and the export's Keras weights.
    assert (out / "gradcam.png").is_file() == (run_metrics["accuracy"] < 1.0)
    assert ("## Explanations (Grad-CAM)" in (out / "report.md").read_text()) == (run_metrics["accuracy"] < 1.0)
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert all(os.path.isfile(r["input"]) and r["input"].endswith(".png") for r in rows)  # file paths
    other = write_color_pngs(str(tmp_path / "other"), ["red", "green", "purple"])
    assert_one_line_error(_cli("evaluate", base / "saved_models" / "image_folder", "--data-dir", other),
                          "do not match", "lacks blue", "has purple")


def test_image_runs_show_a_grid_of_test_images_and_the_head_phase_end(image_run):
    _, run_dir, _ = image_run
    assert _plugin_tags(_events(run_dir, "test"))["images"] == ["confusion_matrix", "examples", "gradcam", "reliability"]
    # The head phase trained on cached features: its phase-end look ran the head on them.
    assert [e.step for e in _events(run_dir, "validation").Tensors("confusion_matrix")] == [1]
    report = (run_dir / "report.md").read_text()
    assert "![examples](examples.png)" in report and "| epochs | 2 | 5 |" in report


# ---- tl-app tensorboard -----------------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url, deadline):
    """GET `url` until it answers (at most 60 tries, until `deadline`); the JSON body."""
    for _ in range(60):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(1.0)
    raise AssertionError(f"{url} did not answer")


def test_tensorboard_serves_the_runs_with_images_and_hparams(digits_run):
    base, _, _ = digits_run
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "tl-app")
    proc = subprocess.Popen([exe, "tensorboard", "--logdir", str(base / "runs"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        runs = []
        while "digits/first/test" not in runs and time.time() < deadline:  # TensorBoard loads event files in the background
            runs = _get_json(f"http://127.0.0.1:{port}/data/runs", deadline)
            time.sleep(0.5)
        assert {"digits/first", "digits/first/train", "digits/first/validation", "digits/first/test"} <= set(runs)
        plugins = _get_json(f"http://127.0.0.1:{port}/data/plugins_listing", deadline)
        assert plugins["images"]["enabled"] and plugins["hparams"]["enabled"]
        assert plugins["text"]["enabled"] and plugins["graphs"]["enabled"] and plugins["scalars"]["enabled"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert f"TensorBoard at http://127.0.0.1:{port}/" in output


def test_tensorboard_on_a_taken_port_says_so_and_suggests_another(digits_run):
    base, _, _ = digits_run
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = assert_one_line_error(_cli("tensorboard", "--logdir", base / "runs", "--port", port),
                                     f"port {port} on 127.0.0.1 is already in use", "try --port")
    assert_one_line_error(_cli("tensorboard", "--logdir", base / "missing"), "no such directory")
    assert line
