"""The serving check before publishing, `tl-app export RUN_DIR`, models.config and labels, warmup before AVAILABLE."""
import json
import os
import threading

import numpy as np
import pytest
from google.protobuf import text_format

from helpers import assert_one_line_error


@pytest.fixture
def checked(monkeypatch):
    """Runs in this test do the serving check (the suite turns it off for every other test)."""
    monkeypatch.setenv("TL_APP_SERVING_CHECK", "1")


def read_config(base):
    from tensorflow_serving.config import model_server_config_pb2

    text = (base / "models.config").read_text()
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_a_run_publishes_only_after_the_served_export_answers_as_the_in_process_model(workdir, cli, checked):
    result = cli("run", "digits", "--epochs", "2")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("[tl-app] serving check passed"))
    assert "10 warmup request(s) over REST and gRPC answered as the in-process model" in line
    assert result.output.index("serving check passed") < result.output.index("exported saved_models/digits/1")
    assert [c.name for c in read_config(workdir / "saved_models").model_config_list.config] == ["digits"]

    # The same run's export again, from its run directory: a new version with the same weights, checked too.
    (run_dir,) = (workdir / "runs" / "digits").iterdir()
    again = cli("export", str(run_dir))
    assert again.exit_code == 0, again.output
    assert "serving check passed" in again.output and "exported saved_models/digits/2" in again.output
    from serve_helpers import digits_pixels, in_process

    pixels = digits_pixels(5)
    first = in_process(str(workdir / "saved_models" / "digits" / "1"), {"pixels": pixels})
    second = in_process(str(workdir / "saved_models" / "digits" / "2"), {"pixels": pixels})
    np.testing.assert_array_equal(first["probabilities"], second["probabilities"])
    extra = workdir / "saved_models" / "digits" / "2" / "assets.extra"
    assert json.loads((extra / "config.json").read_text()) == json.loads((run_dir / "config.json").read_text())
    assert (extra / "tf_serving_warmup_requests").is_file()


def test_a_failing_check_publishes_nothing_and_exits_4_saying_what_differed(workdir, cli, checked, monkeypatch):
    from tl_app.pipeline import serving_check

    honest = serving_check.in_process_model

    def skewed(ctx):  # an in-process model that disagrees with its own export
        run = honest(ctx)
        return lambda signature, inputs: {**run(signature, inputs), "class_id": np.array([99])}

    monkeypatch.setattr(serving_check, "in_process_model", skewed)
    result = cli("run", "digits", "--epochs", "1")
    assert result.exit_code == 4, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output
    assert line.startswith("error: serving check failed, nothing published: warmup request 0 over REST: class_id is [")
    assert "in-process [99]" in line and "--no-serving-check" in line
    assert not (workdir / "saved_models" / "digits").exists() or not [
        n for n in os.listdir(workdir / "saved_models" / "digits") if n.isdigit()]
    assert not list((workdir / "runs" / "digits").glob("*/complete.json"))

    skipped = cli("run", "digits", "--epochs", "1", "--no-serving-check")
    assert skipped.exit_code == 0 and "serving check" not in skipped.output
    assert (workdir / "saved_models" / "digits" / "1").is_dir()


def test_export_of_a_run_that_is_not_a_finished_run_fails_with_one_line(workdir, cli, tmp_path):
    assert_one_line_error(cli("export", str(tmp_path / "nope")), "no such run directory")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text('{"recipe": "digits"}')
    assert_one_line_error(cli("export", str(tmp_path / "half")), "not finished", "--resume")


# ---- models.config and labels ----------------------------------------------------------------
def _fake_versions(base, model, versions):
    for version in versions:
        os.makedirs(base / model / str(version))
        (base / model / str(version) / "saved_model.pb").write_bytes(b"")


def test_models_config_lists_servable_models_and_keeps_policies_labels_and_base_path(tmp_path, cli):
    from tl_app.export import models_config

    base = tmp_path / "saved_models"
    _fake_versions(base, "digits", [1, 2, 3])
    _fake_versions(base, "flowers", [1])
    os.makedirs(base / "flowers-tflite" / "1")  # TFLite and encoder directories hold no SavedModel: not servable
    (base / "flowers-tflite" / "1" / "model.tflite").write_bytes(b"")
    os.makedirs(base / "bbc-encoder" / "1")

    result = cli("models-config", str(base), "--base-path", "/models")
    assert result.exit_code == 0, result.output
    assert "2 model(s) (digits, flowers), base paths under /models" in result.output
    config = read_config(base)
    assert [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config] == [
        ("digits", "/models/digits", "tensorflow"), ("flowers", "/models/flowers", "tensorflow")]

    result = cli("label", "digits", "1", "stable", "--base-dir", str(base))  # an old version: the policy must load it
    assert result.exit_code == 0, result.output
    assert "version policy is now specific {1, 3}" in result.output
    assert cli("label", "digits", "3", "canary", "--base-dir", str(base)).exit_code == 0
    _fake_versions(base, "digits", [4])
    models_config.update(str(base))  # what the next export does: labels, policy and /models are kept
    digits = read_config(base).model_config_list.config[0]
    assert dict(digits.version_labels) == {"stable": 1, "canary": 3}
    assert list(digits.model_version_policy.specific.versions) == [1, 3]
    assert digits.base_path == "/models/digits"

    assert_one_line_error(cli("label", "digits", "9", "stable", "--base-dir", str(base)), "no version 9", "1, 2, 3, 4")
    assert_one_line_error(cli("label", "nope", "1", "stable", "--base-dir", str(base)), "no model 'nope'", "digits")
    assert_one_line_error(cli("label", "digits", "1", "not-ok", "--base-dir", str(base)), "letters, digits and '_'")
    assert_one_line_error(cli("label", "../digits", "1", "x", "--base-dir", str(base)), "not a model directory name")
    assert_one_line_error(cli("models-config", str(base), "--base-path", "models"), "absolute path")
    (base / "models.config").write_text("model_config_list { config { nme: 'x' } }")
    assert_one_line_error(cli("models-config", str(base)), "models.config: not a ModelServerConfig")


def test_serve_refuses_bad_arguments_with_one_line(tmp_path, cli):
    assert_one_line_error(cli("serve", str(tmp_path / "nope")), "no such directory of exports")
    assert_one_line_error(cli("serve", "--model-config", str(tmp_path / "nope.config")), "no such file")
    assert_one_line_error(cli("serve", "--model-name", "digits"), "--model-base-path go together")
    (tmp_path / "models.config").write_text("model_config_list { nope }")
    assert_one_line_error(cli("serve", str(tmp_path)), "models.config: not a ModelServerConfig")


def test_a_check_with_no_warmup_requests_is_refused_before_training(workdir, cli, checked):
    assert_one_line_error(cli("run", "digits", "--warmup-examples", "0"), "--warmup-examples 0", "--no-serving-check")
    assert not (workdir / "runs" / "digits").exists() or not list((workdir / "runs" / "digits").iterdir())


# ---- the manager: warmup before AVAILABLE, failures, unloading ------------------------------------
def test_a_version_is_available_only_after_its_warmup_and_a_failing_warmup_is_never_served(tmp_path):
    from tl_app.export import warmup
    from tl_app.serve.errors import ServingError
    from tl_app.serve.manager import ModelManager
    from tl_app.serve.servable import Servable
    from tl_app.serve.sources import SingleModelSource
    from serve_helpers import tiny_image_model

    import tl_app.serve.servable as servable_module
    from tl_app.export import savedmodel
    from tl_app.image.serving import image_signatures

    model = tiny_image_model(2)
    base = tmp_path / "tiny"
    savedmodel.export_model(model, image_signatures(model, ["a", "b"], 32), str(base), ["a", "b"], {}, {})
    good = np.zeros([1, 32, 32, 3], np.float32)
    warmup.write_warmup_file(str(base / "1"), {"images": good}, signature_name="serving_images")

    release, started = threading.Event(), threading.Event()
    real_warmup = Servable.warmup

    def slow_warmup(self):
        started.set()
        assert release.wait(60)
        return real_warmup(self)

    servable_module.Servable.warmup = slow_warmup
    try:
        manager = ModelManager(SingleModelSource("tiny", str(base)), poll_seconds=0.05)
        manager.start()
        assert started.wait(120)
        assert manager.status("tiny")[0][1].state == "LOADING"  # loaded, warming up: not yet served
        with pytest.raises(ServingError, match=r"Servable not found for request: Latest\(tiny\)"):
            manager.servable("tiny")
        release.set()
        for _ in range(600):
            if manager.status("tiny")[0][1].state == "AVAILABLE":
                break
            threading.Event().wait(0.05)
        assert manager.servable("tiny").version == 1
    finally:
        servable_module.Servable.warmup = real_warmup
        release.set()
        manager.stop()

    # Version 2's warmup asks for an input the signature lacks: it ends in END with that error; 1 keeps serving.
    import shutil

    shutil.copytree(base / "1", base / "2")
    warmup.write_warmup_file(str(base / "2"), {"pixels": good}, signature_name="serving_images")
    manager.poll()
    (version, state), = [item for item in manager.status("tiny") if item[0] == 2]
    assert state.state == "END" and state.error_code == "INVALID_ARGUMENT"
    assert state.error_message.startswith("warmup request 0: input size does not match signature")
    assert manager.servable("tiny").version == 1


def test_serving_commands_help_loads_no_tensorflow_grpc_or_web_server():
    import textwrap

    from helpers import run_python

    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from tl_app.cli import cli
        for args in (["--help"], ["serve", "--help"], ["predict", "--help"], ["export", "--help"], ["label", "--help"],
                     ["models-config", "--help"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, (args, result.output)
        print("HEAVY", sorted(m for m in ("tensorflow", "keras", "grpc", "starlette", "uvicorn") if m in sys.modules))
    """)
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout


def test_deploy_files_name_the_generated_config_and_batching_file():
    import yaml

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    deployment, service = yaml.safe_load_all(open(os.path.join(root, "deploy", "kubernetes.yaml")))
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--model_config_file=/models/models.config" in args and "--enable_batching" in args
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}
    batching = open(os.path.join(root, "deploy", "batching_parameters.txt")).read()
    for field in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
        assert f"{field} {{ value: " in batching


def test_ctrl_c_stops_the_server_cleanly(tmp_path):
    import signal

    from serve_helpers import ServerProcess

    from tl_app.serve.client import RestClient, RestError

    (tmp_path / "empty").mkdir()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # With the batching parameters the docker set-up gives TF Serving: its batch threads must not hold up the stop.
    server = ServerProcess("--model-name", "digits", "--model-base-path", str(tmp_path / "empty"),
                           "--batching-parameters-file", os.path.join(root, "deploy", "batching_parameters.txt"),
                           "--intra-op-threads", "1", "--inter-op-threads", "2")
    try:
        with pytest.raises(RestError, match="Could not find any versions of model digits"):
            RestClient(server.url).status("digits")  # up, and nothing to serve yet
    finally:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(60) == 0, server.output()
    assert "batching: up to 64 examples a call, 2000 us timeout, 4 thread(s)" in server.output()
    assert "TensorFlow threads: intra-op 1, inter-op 2" in server.output()  # read back from TensorFlow's config
    assert server.output().endswith("[tl-app] stopped") and "Traceback" not in server.output()
