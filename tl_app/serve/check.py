"""The serving check: a new export, served by a fresh `tl-app serve` process, must answer as the in-process model.

What TFX's InfraValidator does with a real model server, for any signature: before a version is
published, its complete export (still in its temporary directory) is loaded by a separate
`tl-app serve` process, whose own load replays the warmup requests (a version that fails them never
becomes AVAILABLE); then each warmup request is sent over REST and over gRPC, and both answers must
equal the in-process model's: the same classes, and probabilities within `atol` (the in-process
model runs eagerly in Keras, the server the SavedModel's graph).

The process is started early (`start()`, while the run still evaluates and exports: TensorFlow's
import is most of its cost) and given the export when it exists (`check()`), through a symlink in a
staging directory it polls.

Examples:
    >>> checker = ServingChecker("digits").start()  # doctest: +SKIP
    >>> checker.check("saved_models/digits/.tmp-export-x", in_process)  # doctest: +SKIP
    >>> checker.close()  # doctest: +SKIP
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from tl_app.errors import ServingCheckFailed

READY_LINE = re.compile(r"REST http://[^:]+:(\d+)/.*gRPC [^ ]+:(\d+)")
VERSION = 1


def numerics_env():
    """Environment that gives a child process this process's oneDNN setting (`TF_ENABLE_ONEDNN_OPTS`).

    oneDNN kernels round differently from TensorFlow's own (last-bit differences), and the CLI turns
    them on unless the variable says otherwise: a server compared with this process must run the same
    kernels.
    """
    if "tensorflow" not in sys.modules:
        return {}
    from tensorflow.python.util import _pywrap_util_port

    return {"TF_ENABLE_ONEDNN_OPTS": "1" if _pywrap_util_port.IsMklEnabled() else "0"}


class ServingChecker:
    """One fresh `tl-app serve` process for one model.

    Args:
        model_name: the model's name (as clients will use it).
        timeout: seconds the server may take to start and load the export.
        atol: largest difference allowed between served and in-process probabilities.
    """

    def __init__(self, model_name, timeout=300.0, atol=1e-5):
        self.model_name = model_name
        self.timeout = timeout
        self.atol = atol
        self.stage = None
        self.process = None
        self.ports = None
        self._output = []
        self._ready = threading.Event()
        self.started_at = None

    def start(self):
        """Start the server on free 127.0.0.1 ports, serving the (still empty) staging directory."""
        self.stage = tempfile.mkdtemp(prefix="tl-app-serving-check-")
        command = [sys.executable, "-m", "tl_app.cli", "serve", "--model-name", self.model_name,
                   "--model-base-path", self.stage, "--rest-port", "0", "--grpc-port", "0", "--poll-seconds", "0.1"]
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TL_APP_SERVE_PARENT=str(os.getpid()),
                                                 **numerics_env()))
        threading.Thread(target=self._read_output, daemon=True).start()
        return self

    def _read_output(self):
        for line in self.process.stdout:
            self._output.append(line.rstrip())
            match = READY_LINE.search(line)
            if match and self.ports is None:
                self.ports = int(match.group(1)), int(match.group(2))
                self._ready.set()
        self._ready.set()

    def _fail(self, what):
        raise ServingCheckFailed(f"serving check failed, nothing published: {what} (--no-serving-check skips "
                                 "the check)")

    def _last_words(self):
        lines = [line for line in self._output if line.strip() and "Traceback" not in line]
        return lines[-1] if lines else f"exit code {self.process.poll()}"

    def _wait_available(self, rest, deadline):
        from tl_app.serve.client import RestError

        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                self._fail(f"the server stopped: {self._last_words()}")
            try:
                versions = rest.status(self.model_name)["model_version_status"]
            except (RestError, OSError):
                versions = []
            for entry in versions:
                if entry["state"] == "AVAILABLE":
                    return
                if entry["state"] == "END":
                    self._fail(f"the server could not load the export: {entry['status']['error_message']}")
            time.sleep(0.05)
        self._fail(f"the server did not load the export within {self.timeout:.0f} s")

    def check(self, export_dir, in_process):
        """Serve `export_dir`, replay its warmup requests over REST and gRPC, compare with `in_process`.

        Args:
            export_dir: the complete export (its temporary directory).
            in_process: `(signature_name, inputs) -> {output: array}`, the model in this process.

        Raises:
            ServingCheckFailed: one line saying what differed; the caller publishes nothing.
        """
        from tl_app.export.warmup import read_warmup_requests
        from tl_app.serve.client import RestClient

        requests = read_warmup_requests(export_dir)
        if not requests:
            self._fail("the export has no warmup requests to replay (--warmup-examples 0?)")
        os.symlink(os.path.abspath(export_dir), os.path.join(self.stage, str(VERSION)))
        deadline = time.perf_counter() + self.timeout
        if not self._ready.wait(timeout=self.timeout) or self.ports is None:
            self._fail(f"the server did not start: {self._last_words()}")
        rest = RestClient(f"http://127.0.0.1:{self.ports[0]}", timeout=self.timeout)
        channel = None
        try:
            self._wait_available(rest, deadline)
            channel, stub = _grpc_stub(self.ports[1])
            for index, request in enumerate(requests):
                self._compare(index, request, rest, stub, in_process)
        finally:
            rest.close()
            if channel is not None:
                channel.close()
        return len(requests)

    def _compare(self, index, request, rest, stub, in_process):
        import grpc
        import tensorflow as tf

        from tl_app.serve.client import RestError

        signature = request.model_spec.signature_name or "serving_default"
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        expected = {k: np.asarray(v) for k, v in in_process(signature, inputs).items()}
        request.model_spec.name = self.model_name
        try:
            outputs = rest.predict(self.model_name, inputs, version=VERSION, signature_name=signature)
        except (RestError, OSError) as exc:
            self._fail(f"warmup request {index} over REST: {exc}")
        if not isinstance(outputs, dict):
            outputs = {next(iter(expected)): outputs}
        self._same(index, "REST", {k: _from_json(v) for k, v in outputs.items()}, expected)
        try:
            response = stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            self._fail(f"warmup request {index} over gRPC: {exc.code().name}: {exc.details()}")
        self._same(index, "gRPC", {k: tf.make_ndarray(v) for k, v in response.outputs.items()}, expected)

    def _same(self, index, protocol, served, expected):
        where = f"warmup request {index} over {protocol}"
        if set(served) != set(expected):
            self._fail(f"{where}: outputs {sorted(served)}, in-process {sorted(expected)}")
        for name in sorted(expected):
            got, want = np.asarray(served[name]), expected[name]
            if want.dtype.kind in "OSU":
                got = np.array([_text(v) for v in got.reshape(-1)]).reshape(got.shape)
                want = np.array([_text(v) for v in want.reshape(-1)]).reshape(want.shape)
            if got.shape != want.shape:
                self._fail(f"{where}: {name} has shape {list(got.shape)}, in-process {list(want.shape)}")
            if want.dtype.kind == "f":
                worst = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
                if not worst <= self.atol:
                    self._fail(f"{where}: {name} differs from the in-process model's by up to {worst:.3g} "
                               f"(allowed {self.atol:g})")
            elif not np.array_equal(got, want):
                self._fail(f"{where}: {name} is {got.tolist()}, in-process {want.tolist()}")

    def close(self):
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and remove the staging directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.stage:
            shutil.rmtree(self.stage, ignore_errors=True)


def _grpc_stub(port):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _from_json(value):
    """A JSON output value as an array (strings stay strings; b64 objects become bytes)."""
    import base64

    def leaf(v):
        return base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v

    if isinstance(value, list):
        flat = np.array(value, dtype=object)
        if flat.dtype == object and flat.size and not isinstance(flat.reshape(-1)[0], (str, dict, bytes)):
            return np.array(value)
        return np.vectorize(leaf, otypes=[object])(flat) if flat.size else flat
    return np.array(leaf(value))
