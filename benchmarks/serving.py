"""`tl-app serve` against in-process calls of the same SavedModel: requests/s and p50/p99 latency.

For the `digits` export and an `image_folder` export (MobileNetV2 with the offline weights, Fashion-MNIST
written as PNG class folders, 96 px by default; images are sent as PNG bytes, `{"b64": ...}` over REST),
at batch 1 and batch 32, three ways over the same requests:
- in-process: `tf.saved_model.load(...).signatures["serving_default"](...)` in this process;
- REST: JSON bodies (prepared beforehand, as a load generator sends them) over one keep-alive connection;
- gRPC: `PredictionServiceStub.Predict` with prepared `PredictRequest`s.
Each way runs `--clients` concurrent clients (threads; default 1: requests/s is then 1/latency). The server
is a fresh `tl-app serve` process on 127.0.0.1 with the CLI's defaults; in-process runs with the same oneDNN
setting (the CLI's default, on). Targets (issue 19): >= 0.7x in-process requests/s at batch 32 on both
protocols; gRPC p50 at batch 1 within 3 ms of in-process.

`--floor` also sends the same requests to `empty_server.py`, a server on the same libraries (uvicorn,
grpcio) that answers without running anything. With one client a request costs at least that server's
round trip plus the model call, so the table also prints the bound this puts on any server built on them,
at batch 32: 1 / (1 + in-process req/s / empty req/s) times in-process.
`--check-cost` also times `tl-app run digits` and `tl-app run image_folder` with and without the serving
check (what the check adds to a run's wall time). `--batching` also runs the table against a server started
with `--enable-batching` (TF Serving's defaults: no timeout, a batch thread per core), in the same run;
`--also ARGS` against `tl-app serve ARGS` (e.g. `--also='--intra-op-threads 1 --inter-op-threads 1'`).

    python benchmarks/serving.py [--requests 200] [--clients 1] [--image-size 96] [--batching] [--also ARGS] [--floor]
        [--check-cost]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the CLI (and so the server) runs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_png import write_fashion_pngs  # noqa: E402

import numpy as np  # noqa: E402

TL_APP = os.path.join(os.path.dirname(sys.executable), "tl-app")
EMPTY_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "empty_server.py")


def build_exports(base, work, image_size):
    """digits and image_folder exports under `base` (short trainings: the weights do not matter here)."""
    import tl_app

    common = {"export_dir": base, "logdir": os.path.join(work, "runs"), "serving_check": False}
    tl_app.run("digits", epochs=2, **common)
    data = write_fashion_pngs(os.path.join(work, "fashion"), train_per_class=30, test_per_class=10)
    tl_app.run("image_folder", data_dir=data, weights="offline", image_size=image_size, epochs=1, fine_tune_epochs=0,
               keep_features=False, **common)


def requests_for(base, name, batch):
    """(inputs dict, REST body bytes, PredictRequest) for `batch` real examples of the export's warmup file."""
    from tl_app.export.warmup import predict_request, read_warmup_requests
    from tl_app.serve.client import predict_body

    import tensorflow as tf

    export = os.path.join(base, name, "1")
    examples = [{k: tf.make_ndarray(v) for k, v in r.inputs.items()} for r in read_warmup_requests(export)]
    inputs = {k: np.concatenate([examples[i % len(examples)][k] for i in range(batch)]) for k in examples[0]}
    return inputs, predict_body(inputs), predict_request(inputs, model_name=name)


def timed(call, requests, clients):
    """(requests/s, p50 ms, p99 ms) of `requests` calls spread over `clients` threads (after 5 warm-up calls each)."""
    latencies, errors = [], []

    def run(n):
        for _ in range(5):
            call()
        mine = []
        for _ in range(n):
            start = time.perf_counter()
            try:
                call()
            except Exception as exc:  # noqa: BLE001  (counted and shown, the benchmark goes on)
                errors.append(exc)
            mine.append(time.perf_counter() - start)
        latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(requests // clients,)) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / wall, q[49] * 1e3, q[98] * 1e3


def start_server(base, server_args=(), command=None):
    """(process, REST port, gRPC port) of `tl-app serve base` (or `command`, which prints the same ready line)."""
    command = command or [TL_APP, "serve", base, "--rest-port", "0", "--grpc-port", "0", *server_args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    from tl_app.serve.check import READY_LINE

    for line in process.stdout:
        match = READY_LINE.search(line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, int(match.group(1)), int(match.group(2))
    raise RuntimeError("tl-app serve did not start")


def wait_available(rest, names, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all(rest.status(n)["model_version_status"][0]["state"] == "AVAILABLE" for n in names):
                return
        except Exception:  # noqa: BLE001  (not up yet)
            pass
        time.sleep(0.2)
    raise RuntimeError("models not AVAILABLE in time")


def protocol_calls(name, body, request, rest_port, grpc_port):
    """(REST call, gRPC call) sending the prepared request for `name`; each thread keeps its own connection."""
    import http.client

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    local = threading.local()

    def rest():
        if not hasattr(local, "http"):
            local.http = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=120)
        local.http.request("POST", f"/v1/models/{name}:predict", body, {"Content-Type": "application/json"})
        response = local.http.getresponse()
        payload = json.loads(response.read())
        assert response.status == 200, payload

    def grpc_call():
        if not hasattr(local, "stub"):
            local.stub = prediction_service_pb2_grpc.PredictionServiceStub(
                grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
        local.stub.Predict(request, timeout=120)

    return rest, grpc_call


def serving_table(base, requests, clients, server_args=(), floor=False, verbose=True):
    """Print requests/s and latency in-process, over REST and over gRPC, for both exports at batch 1 and 32;
    returns the measurements, `(export, batch, way, req/s, p50 ms, p99 ms, x in-process)` each.

    With `floor`, also against `empty_server.py` (answers without running anything): what no server on
    the same libraries can beat.
    """
    import tensorflow as tf

    from tl_app.serve.client import RestClient

    process, rest_port, grpc_port = start_server(base, server_args)
    empty = start_server(None, command=[sys.executable, EMPTY_SERVER]) if floor else None
    rows = []
    try:
        wait_available(RestClient(f"http://127.0.0.1:{rest_port}"), ["digits", "image_folder"])
        for name in ("digits", "image_folder"):
            loaded = tf.saved_model.load(os.path.join(base, name, "1"))
            function = loaded.signatures["serving_default"]
            for batch in (1, 32):
                inputs, body, request = requests_for(base, name, batch)
                n = requests if name == "digits" or batch == 1 else max(requests // 8, 20)

                def in_process():
                    {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}

                ways = dict(zip(("REST", "gRPC"), protocol_calls(name, body, request, rest_port, grpc_port)))
                if empty is not None:
                    ways.update(zip(("REST empty", "gRPC empty"), protocol_calls(name, body, request, *empty[1:])))
                base_rate, base_p50, base_p99 = timed(in_process, n, clients)
                rows.append((name, batch, "in-process", base_rate, base_p50, base_p99, 1.0))
                for label, call in ways.items():
                    rate, p50, p99 = timed(call, n, clients)
                    rows.append((name, batch, label, rate, p50, p99, rate / base_rate))
    finally:
        for server in (process, empty and empty[0]):
            if server:
                server.terminate()
                server.wait(30)
    if verbose:
        print_table(rows, server_args, clients, floor)
    return rows


def print_table(rows, server_args, clients, floor):
    print(f"\nserving: tl-app serve {' '.join(server_args)}; {clients} client(s), {os.cpu_count()} CPU(s); "
          "requests/s, latency ms" + ("; 'empty': a server that runs nothing (empty_server.py)" if floor else ""))
    print(f"{'export':<13}{'batch':>6}  {'way':<11}{'req/s':>9}{'ex/s':>10}{'p50':>9}{'p99':>9}{'x in-proc':>11}")
    for name, batch, way, rate, p50, p99, ratio in rows:
        print(f"{name:<13}{batch:>6}  {way:<11}{rate:>9.1f}{rate * batch:>10.1f}{p50:>9.2f}{p99:>9.2f}{ratio:>11.2f}")
    for name in ("digits", "image_folder"):
        b32 = {r[2]: r for r in rows if r[0] == name and r[1] == 32}
        b1 = {r[2]: r for r in rows if r[0] == name and r[1] == 1}
        print(f"{name}: batch 32 REST {b32['REST'][6]:.2f}x, gRPC {b32['gRPC'][6]:.2f}x in-process (target >= 0.7x); "
              f"batch 1 gRPC p50 {b1['gRPC'][4] - b1['in-process'][4]:+.2f} ms vs in-process (target <= +3 ms)")
        if floor:
            # A request costs at least the empty server's round trip plus the model call itself: one client's
            # requests/s is at most 1 / (1/empty + 1/in-process), i.e. this many times in-process.
            bound = {way: 1 / (1 + b32["in-process"][3] / b32[f"{way} empty"][3]) for way in ("REST", "gRPC")}
            print(f"{'':<13} at batch 32 an empty server answers at {b32['REST empty'][6]:.2f}x (REST), "
                  f"{b32['gRPC empty'][6]:.2f}x (gRPC) in-process requests/s; so a server on uvicorn / grpcio whose only "
                  f"costs were that and the model call would reach REST {bound['REST']:.2f}x, gRPC {bound['gRPC']:.2f}x")


def table_rows(measured, floor=True):
    """The benchmark table's serving rows (issues 19, 31): throughput against in-process and, for digits, against
    the empty-server floor; gRPC's added p50 latency at batch 1."""
    from rows import row

    out = []
    by = {(r[0], r[1], r[2]): r for r in measured}
    for name in ("digits", "image_folder"):
        for batch in (1, 32):
            inproc = by[(name, batch, "in-process")]
            for way in ("REST", "gRPC"):
                rate = by[(name, batch, way)][3]
                goal = 0.9 if name == "image_folder" and batch == 32 else None
                out.append(row(f"serving {name} batch {batch}, {way} vs in-process", inproc[3], rate, goal, "req/s"))
                if floor and name == "digits":  # small model: the server's own cost is the target (issue 31)
                    bound = 1 / (1 / inproc[3] + 1 / by[(name, batch, f"{way} empty")][3])
                    out.append(row(f"serving {name} batch {batch}, {way} vs empty-server floor", bound, rate,
                                   0.8 if batch == 32 else None, "req/s",
                                   note="floor: 1/(1/in-process + 1/empty server) req/s"))
        added = by[(name, 1, "gRPC")][4] - by[(name, 1, "in-process")][4]
        out.append(row(f"serving {name} batch 1, gRPC p50 added latency", by[(name, 1, "in-process")][4],
                       by[(name, 1, "gRPC")][4], 3.0, "ms", higher_is_better=False, ratio=added,
                       note="ratio = added ms"))
    return out


def rows(quick=False, image_size=96):
    """Build both exports, serve them, and return the table's serving rows."""
    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    with tempfile.TemporaryDirectory() as work:
        base = os.path.join(work, "saved_models")
        build_exports(base, work, image_size)
        return table_rows(serving_table(base, 60 if quick else 200, 1, floor=True, verbose=False))


def check_cost(work, image_size):
    """Wall time of `tl-app run` with and without the serving check, for digits and image_folder."""
    data = os.path.join(work, "fashion")
    cases = {"digits": ["digits", "--epochs", "5"],
             "image_folder": ["image_folder", "--data-dir", data, "--set", "weights=offline", "--set",
                              f"image_size={image_size}", "--epochs", "2", "--set", "fine_tune_epochs=1",
                              "--set", "keep_features=false"]}
    print("\nserving check: wall time of `tl-app run` (fresh process each; seconds)")
    for name, args in cases.items():
        times = {}
        for check in (False, True):
            out = tempfile.mkdtemp(dir=work)
            command = [TL_APP, "run", *args, "--export-dir", os.path.join(out, "sm"), "--logdir", os.path.join(out, "runs")]
            env = dict(os.environ, TL_APP_SERVING_CHECK="1" if check else "0")
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            times[check] = time.perf_counter() - start
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
            line = next((l for l in result.stdout.splitlines() if "serving check passed" in l), "")
            if check:
                print(f"  {line.replace('[tl-app] ', '')}")
        print(f"{name:<13} without {times[False]:7.1f}   with {times[True]:7.1f}   the check adds "
              f"{times[True] - times[False]:+.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement (image batch 32: 1/8)")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batching", action="store_true", help="also against `tl-app serve --enable-batching`")
    parser.add_argument("--also", action="append", default=[], metavar="ARGS",
                        help="also against `tl-app serve ARGS` (repeatable), e.g. --also='--intra-op-threads 1'")
    parser.add_argument("--floor", action="store_true",
                        help="also time the same requests against a server that runs nothing (empty_server.py)")
    parser.add_argument("--check-cost", action="store_true", help="also time runs with and without the serving check")
    args = parser.parse_args()
    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    with tempfile.TemporaryDirectory() as work:
        base = os.path.join(work, "saved_models")
        build_exports(base, work, args.image_size)
        serving_table(base, args.requests, args.clients, floor=args.floor)
        if args.batching:
            serving_table(base, args.requests, args.clients, ["--enable-batching"])
        for server_args in args.also:
            serving_table(base, args.requests, args.clients, server_args.split())
        if args.check_cost:
            check_cost(work, args.image_size)


if __name__ == "__main__":
    main()
