"""`tl-app serve` as a real process over real exports (digits, a tiny image model, a tiny BERT), driven as clients
of TF Serving drive it: plain HTTP requests written from g3doc/api_rest.md, and tensorflow-serving-api's gRPC stubs.

One server serves the whole module (limits lowered so the limit tests stay small: bodies of 1 MB, batches of 64).
"""
import base64
import http.client as httpclient
import io
import json
import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from serve_helpers import ServerProcess, build_exports, digits_pixels, in_process, states, wait_for

MODELS = ("digits", "image_folder", "text_folder")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    build_exports(base, tmp_path_factory)
    return base


@pytest.fixture(scope="module")
def server(base):
    server = ServerProcess(str(base), "--poll-seconds", "0.2", "--max-body-mb", "1", "--max-batch-size", "64")
    from tl_app.serve.client import RestClient

    client = RestClient(server.url)
    try:
        wait_for(lambda: all(states(client, m).get(1) == "AVAILABLE" for m in MODELS), timeout=180)
        yield server
    finally:
        client.close()
        code = server.stop()
        assert code == 0, server.output()[-2000:]  # SIGTERM: a clean stop
        assert "[tl-app] stopped" in server.output()


def http(server, method, path, body=None, headers=None):
    """(status, parsed JSON body) of one plain HTTP request."""
    connection = httpclient.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def export_dir(base, name, version=1):
    return str(base / name / str(version))


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


def photos(n=2):
    from test_images import photo_crops

    return [np.asarray(p, np.uint8) for p in photo_crops(n, 48, seed=3)]


def grpc_stubs(server):
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)


def assert_same(served, expected):
    """A served answer (JSON values or arrays) equals the in-process outputs exactly (floats as float32)."""
    assert set(served) == set(expected)
    for name, want in expected.items():
        got = served[name]
        if want.dtype.kind == "f":
            np.testing.assert_array_equal(np.asarray(got, np.float32), want)
        elif want.dtype.kind in "OS":
            assert [v.decode() if isinstance(v, bytes) else v for v in np.asarray(got, object).reshape(-1)] == \
                [v.decode() for v in want.reshape(-1)]
        else:
            np.testing.assert_array_equal(np.asarray(got), want)


# ---- exports -------------------------------------------------------------------------------
def test_exports_carry_warmup_requests_and_models_config_parses(base):
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_serving.apis import prediction_log_pb2
    from tensorflow_serving.config import model_server_config_pb2

    for name, input_name in (("digits", "pixels"), ("image_folder", "image_bytes"), ("text_folder", "text")):
        path = os.path.join(export_dir(base, name), "assets.extra", "tf_serving_warmup_requests")
        logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]
        assert len(logs) == (10 if name == "digits" else 4)  # 10 validation examples by default
        assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
        request = logs[0].predict_log.request
        assert list(request.inputs) == [input_name] and request.model_spec.signature_name == "serving_default"
        value = tf.make_ndarray(request.inputs[input_name])
        if name == "image_folder":  # real validation images, encoded as the signature takes them
            assert Image.open(io.BytesIO(value[0])).size == (32, 32)
    config = text_format.Parse((base / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert sorted(entries) == sorted(MODELS)
    assert entries["digits"].base_path == str(base / "digits") and entries["digits"].model_platform == "tensorflow"
    assert entries["digits"].model_version_policy.latest.num_versions == 1


# ---- status and metadata ---------------------------------------------------------------------
def test_status_of_every_model_and_version(server):
    status, body = http(server, "GET", "/v1/models/digits")
    assert status == 200
    assert body == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    for path in ("/v1/models/image_folder/versions/1", "/V1/MODELS/text_folder"):  # TF Serving's paths ignore case
        status, body = http(server, "GET", path)
        assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    assert http(server, "GET", "/v1/models/nope") == (404, {"error": "Could not find any versions of model nope"})
    assert http(server, "GET", "/v1/models/digits/versions/7") == (404, {"error": "Could not find version 7 of model digits"})
    assert http(server, "GET", "/v1/models") == (400, {"error": "Missing model name in request."})
    assert http(server, "GET", "/v1/models/digits/versions/x")[0] == 400  # Malformed request


def test_metadata_is_the_signature_defs_in_tf_servings_nesting(server):
    status, body = http(server, "GET", "/v1/models/image_folder/versions/1/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "image_folder", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "serving_images", "__saved_model_init_op"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert default["inputs"]["image_bytes"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert sorted(default["outputs"]) == ["class_id", "class_name", "probabilities"]
    status, body = http(server, "GET", "/v1/models/digits/metadata")
    dims = body["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["pixels"]["tensor_shape"]["dim"]
    assert [d["size"] for d in dims] == ["-1", "8", "8"]


# ---- predict over REST -------------------------------------------------------------------------
def test_digits_row_and_columnar_requests(server, base):
    pixels = digits_pixels(3)
    expected = in_process(export_dir(base, "digits"), {"pixels": pixels})
    status, body = http(server, "POST", "/v1/models/digits:predict", {"instances": pixels.tolist()})
    assert status == 200 and len(body["predictions"]) == 3
    assert sorted(body["predictions"][0]) == ["class_id", "class_name", "probabilities"]  # several outputs: objects
    assert_same({k: [p[k] for p in body["predictions"]] for k in expected}, expected)
    status, body = http(server, "POST", "/v1/models/digits/versions/1:predict",
                        {"signature_name": "serving_default", "inputs": {"pixels": pixels.tolist()}})
    assert status == 200 and sorted(body["outputs"]) == sorted(expected)  # columnar: an object by output name
    assert_same(body["outputs"], expected)
    status, body = http(server, "POST", "/v1/models/digits:predict", {"inputs": pixels[:1].tolist()})  # bare tensor
    assert status == 200 and body["outputs"]["class_id"] == [int(expected["class_id"][0])]


def test_image_bytes_as_b64_in_both_formats_and_the_float_signature(server, base):
    images = photos(2)
    encoded = [png(images[0]), png(images[1])]
    expected = in_process(export_dir(base, "image_folder"), {"image_bytes": np.array(encoded, dtype=object)})
    status, body = http(server, "POST", "/v1/models/image_folder:predict", {"instances": [b64(e) for e in encoded]})
    assert status == 200
    assert_same({k: [p[k] for p in body["predictions"]] for k in expected}, expected)
    status, body = http(server, "POST", "/v1/models/image_folder:predict", {"inputs": {"image_bytes": [b64(e) for e in encoded]}})
    assert status == 200
    assert_same(body["outputs"], expected)
    floats = np.stack(images).astype(np.float32)
    expected = in_process(export_dir(base, "image_folder"), {"images": floats}, "serving_images")
    status, body = http(server, "POST", "/v1/models/image_folder:predict",
                        {"signature_name": "serving_images", "inputs": floats.tolist()})
    assert status == 200
    assert_same(body["outputs"], expected)


def test_text_as_plain_strings_and_as_b64(server, base):
    texts = ["the movie was great and lovely .", "awful plot , terrible acting"]
    expected = in_process(export_dir(base, "text_folder"), {"text": np.array([t.encode() for t in texts], dtype=object)})
    for instances in (texts, [b64(t.encode()) for t in texts]):
        status, body = http(server, "POST", "/v1/models/text_folder:predict", {"instances": instances})
        assert status == 200, body
        assert_same({k: [p[k] for p in body["predictions"]] for k in expected}, expected)


# ---- gRPC ----------------------------------------------------------------------------------------
def test_grpc_predict_metadata_and_status_with_the_official_stubs(server, base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

    from tl_app.serve.servable import read_signature_defs

    channel, prediction, models = grpc_stubs(server)
    with channel:
        pixels = digits_pixels(4)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "digits"
        request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(pixels))
        response = prediction.Predict(request, timeout=30)
        assert (response.model_spec.name, response.model_spec.version.value) == ("digits", 1)
        assert_same({k: tf.make_ndarray(v) for k, v in response.outputs.items()},
                    in_process(export_dir(base, "digits"), {"pixels": pixels}))
        request.output_filter.append("class_name")
        assert list(prediction.Predict(request, timeout=30).outputs) == ["class_name"]

        metadata = prediction.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": "text_folder"}, metadata_field=["signature_def"]), timeout=30)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signature_map)
        assert dict(signature_map.signature_def) == dict(read_signature_defs(export_dir(base, "text_folder")))

        status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "digits"}),
                                       timeout=30)
        assert [(s.version, s.state) for s in status.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]

        def code(call, req):
            with pytest.raises(grpc.RpcError) as info:
                call(req, timeout=30)
            return info.value.code().name, info.value.details()

        request.model_spec.name = "nope"
        assert code(prediction.Predict, request) == ("NOT_FOUND", "Servable not found for request: Latest(nope)")
        request.model_spec.name, request.model_spec.signature_name = "digits", "serving_images"
        name, details = code(prediction.Predict, request)
        assert name == "FAILED_PRECONDITION" and 'Serving signature key "serving_images" not found' in details
        assert "serving_default" in details
        request.model_spec.signature_name = ""
        request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(np.array([b"x"], dtype=object)))
        assert code(prediction.Predict, request)[0] == "INVALID_ARGUMENT"
        request.output_filter[:] = ["nope"]
        assert code(prediction.Predict, request)[0] == "INVALID_ARGUMENT"


# ---- bad input ---------------------------------------------------------------------------------
BAD = [
    ("malformed JSON", "digits", '{"instances": [', 400, "JSON Parse error"),
    ("empty body", "digits", "", 400, "The document is empty"),
    ("both formats", "digits", {"instances": [[[0] * 8] * 8], "inputs": [[[0] * 8] * 8]}, 400, "only one of 'inputs' or 'instances'"),
    ("neither format", "digits", {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances' key"),
    ("unknown signature", "image_folder", {"signature_name": "nope", "instances": ["x"]}, 400, "serving_default, serving_images"),
    ("unknown input name", "digits", {"inputs": {"pixelz": [[[0] * 8] * 8]}}, 400, "pixels"),
    ("unknown input in a row", "digits", {"instances": [{"pixelz": [[0] * 8] * 8}]}, 400, "does not have named input: pixelz"),
    ("wrong shape", "digits", {"instances": [[0] * 8]}, 400, "takes shape [-1,8,8]"),
    ("ragged rows", "digits", {"instances": [[[0] * 8] * 8, [[0] * 8] * 7]}, 400, "Failed to process element: 1"),
    ("string for a float", "digits", {"instances": [[["a"] * 8] * 8]}, 400, "is not of expected type: float"),
    ("boolean for a float", "digits", {"instances": [[[True] * 8] * 8]}, 400, "is not of expected type: float"),
    ("null for a float", "digits", {"instances": [[[None] * 8] * 8]}, 400, "JSON Value: null Type: Null is not of"),
    ("number for a string", "text_folder", {"instances": [3]}, 400, "is not of expected type: string"),
    ("undecodable image", "image_folder", {"instances": [b64(b"not an image")]}, 400, "Unknown image file format"),
    ("invalid base64", "image_folder", {"instances": [{"b64": "%%%"}]}, 400, "Unable to base64 decode"),
    ("b64 with another key", "image_folder", {"inputs": {"image_bytes": [{"b64": "AA==", "x": 1}]}}, 400,
     "not formatted correctly for base64 data"),
    ("batch over the limit", "digits", {"inputs": [[[0] * 8] * 8] * 65}, 400, "limit of 64"),
]


@pytest.mark.parametrize("what, model, body, status, fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_tf_servings_error_and_code(server, what, model, body, status, fragment):
    got, answer = http(server, "POST", f"/v1/models/{model}:predict", body)
    assert got == status and list(answer) == ["error"] and fragment in answer["error"], answer
    assert "Traceback" not in answer["error"] and "{{" not in answer["error"]


@pytest.mark.parametrize("path, status, error", [
    ("/v1/models/nope:predict", 404, "Servable not found for request: Latest(nope)"),
    ("/v1/models/digits/versions/9:predict", 404, "Servable not found for request: Specific(digits, 9)"),
    ("/v1/models/digits/labels/nope:predict", 400, "Unrecognized servable version label: nope"),
    ("/v1/models/..%2F..%2Fetc:predict", 404, "Servable not found for request: Latest(../../etc)"),
    ("/v1/models/%2Fetc%2Fpasswd:predict", 404, "Servable not found for request: Latest(/etc/passwd)"),
    ("/v1/models/..:predict", 404, "Servable not found for request: Latest(..)"),
    ("/v1/models/digits/../../etc:predict", 400, "Malformed request: POST /v1/models/digits/../../etc:predict"),
    ("/v1/models/digits:classify", 501, ":classify takes tf.Example signatures"),
])
def test_unknown_models_versions_labels_and_names_that_leave_the_base(server, path, status, error):
    got, answer = http(server, "POST", path, {"instances": [[[0] * 8] * 8]})
    assert got == status and answer["error"].startswith(error), answer


def test_oversized_bodies_and_clients_that_disconnect(server):
    big = json.dumps({"instances": [[[0.0] * 8] * 8] * 8000})  # 2.5 MB: over the 1 MB limit
    status, body = http(server, "POST", "/v1/models/digits:predict", big)
    assert status == 413 and "limit" in body["error"]
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as sock:  # announces 1 GB
        sock.sendall(b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n[[")
        assert b" 413 " in sock.recv(4096).split(b"\r\n")[0]  # answered at once, nothing read
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) as sock:  # gone mid-body
        sock.sendall(b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"instances\"")
    status, body = http(server, "GET", "/v1/models/digits")  # and the server goes on serving
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    assert "Traceback" not in server.output()


# ---- versions while serving ------------------------------------------------------------------------
def test_versions_that_appear_fail_or_disappear_while_serving(server, base):
    from tl_app.serve.client import RestClient

    client = RestClient(server.url)
    model = base / "digits"
    try:
        shutil.copytree(model / "1", model / "2")  # a new version: loaded, then the old one unloaded (latest 1)
        wait_for(lambda: states(client, "digits") == {1: "END", 2: "AVAILABLE"})
        assert "digits version 2: loaded and warmed up (10 warmup request(s))" in server.output()
        status, body = http(server, "GET", "/v1/models/digits/versions/2/metadata")
        assert status == 200 and body["model_spec"]["version"] == "2"

        (model / "3").mkdir()  # a version that cannot load: END with its error, version 2 keeps serving
        (model / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
        wait_for(lambda: states(client, "digits").get(3) == "END")
        status, body = http(server, "GET", "/v1/models/digits/versions/3")
        entry = body["model_version_status"][0]
        assert entry["status"]["error_code"] != "OK" and entry["status"]["error_message"]
        assert http(server, "POST", "/v1/models/digits:predict", {"instances": digits_pixels(1).tolist()})[0] == 200

        shutil.rmtree(model / "3")
        shutil.rmtree(model / "2")  # removed while serving: unloaded, and version 1 (the newest left) loads again
        wait_for(lambda: states(client, "digits").get(1) == "AVAILABLE" and states(client, "digits").get(2) == "END")
        assert http(server, "POST", "/v1/models/digits/versions/2:predict", {"instances": digits_pixels(1).tolist()})[0] == 404
    finally:
        client.close()
        for version in ("2", "3"):
            shutil.rmtree(model / version, ignore_errors=True)


def test_a_label_set_with_tl_app_label_is_served(server, base, cli):
    result = cli("label", "digits", "1", "stable", "--base-dir", str(base))
    assert result.exit_code == 0, result.output
    wait_for(lambda: http(server, "GET", "/v1/models/digits/labels/stable")[0] == 200, timeout=30)
    status, body = http(server, "POST", "/v1/models/digits/labels/stable:predict", {"instances": digits_pixels(1).tolist()})
    assert status == 200 and len(body["predictions"]) == 1
    status, body = http(server, "GET", "/v1/models/digits/labels/stable/metadata")
    assert status == 200 and body["model_spec"]["version"] == "1"
    assert http(server, "GET", "/v1/models/digits/labels/stable")[1]["model_version_status"][0]["version"] == "1"


# ---- load ----------------------------------------------------------------------------------------
def test_four_clients_250_requests_each_all_answered_as_in_process(server, base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    pool = digits_pixels(32, seed=1)
    # One example a request, so the reference runs one at a time too (kernels may round differently by batch size).
    singles = [in_process(export_dir(base, "digits"), {"pixels": pool[k:k + 1]}) for k in range(len(pool))]
    expected = {name: np.concatenate([one[name] for one in singles]) for name in singles[0]}
    errors, done = [], []
    deadline = time.monotonic() + 240

    def client(index):
        connection = httpclient.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)  # keep-alive
        channel, prediction, _ = grpc_stubs(server)
        try:
            for i in range(250):
                if time.monotonic() > deadline:
                    errors.append(f"client {index}: out of time after {i} requests")
                    return
                k = (index * 250 + i) % len(pool)
                if i % 2:
                    request = predict_pb2.PredictRequest(model_spec={"name": "digits"})
                    request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(pool[k:k + 1]))
                    outputs = {n: tf.make_ndarray(v) for n, v in prediction.Predict(request, timeout=60).outputs.items()}
                else:
                    connection.request("POST", "/v1/models/digits:predict", json.dumps({"instances": pool[k:k + 1].tolist()}))
                    response = connection.getresponse()
                    answer = json.loads(response.read())
                    if response.status != 200:
                        errors.append(f"client {index} request {i}: {response.status} {answer}")
                        continue
                    outputs = {n: np.array([answer["predictions"][0][n]]) for n in expected}
                if int(outputs["class_id"][0]) != int(expected["class_id"][k]) or not np.array_equal(
                        np.asarray(outputs["probabilities"], np.float32)[0], expected["probabilities"][k]):
                    errors.append(f"client {index} request {i}: differs from the in-process model")
                done.append(1)
        except (OSError, grpc.RpcError) as exc:
            errors.append(f"client {index}: {exc}")
        finally:
            connection.close()
            channel.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors[:5]
    assert len(done) == 1000


# ---- tl-app predict ------------------------------------------------------------------------------
def test_predict_here_and_against_the_server(server, base, cli, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = tmp_path / "digits.csv"
    rows.write_text("\n".join(",".join(str(int(v)) for v in image) for image in digits.data[:4]) + "\n")
    here = cli("predict", str(base / "digits"), str(rows), "--json", "--top-k", "2")
    assert here.exit_code == 0, here.output
    answers = json.loads(here.output)
    assert [a["input"] for a in answers] == [f"{rows}:{i}" for i in range(1, 5)]
    expected = in_process(export_dir(base, "digits"), {"pixels": digits.images[:4].astype(np.float32)})
    assert [a["top_k"][0]["class_id"] for a in answers] == expected["class_id"].tolist()
    assert len(answers[0]["top_k"]) == 2 and answers[0]["top_k"][0]["probability"] >= answers[0]["top_k"][1]["probability"]
    remote = cli("predict", "digits", str(rows), "--json", "--top-k", "2", "--url", server.url)
    assert remote.exit_code == 0, remote.output
    assert [a["top_k"][0] for a in json.loads(remote.output)] == [a["top_k"][0] for a in answers]

    images = [tmp_path / "a.png", tmp_path / "b.jpg"]
    for path, array in zip(images, photos(2)):
        Image.fromarray(array).save(path)
    lines = cli("predict", str(base / "image_folder" / "1"), *map(str, images), "--url", server.url).output.splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(images[0])) and ("red" in lines[0] or "green" in lines[0]
                                                                         or "blue" in lines[0])
    texts = tmp_path / "texts.txt"
    texts.write_text("great lovely film .\n\nawful plot .\n")
    result = cli("predict", str(base / "text_folder"), str(texts), "a superb story")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == [f"{texts}:1", f"{texts}:3", "a"]

    from helpers import assert_one_line_error

    assert_one_line_error(cli("predict", str(base / "digits"), str(tmp_path / "nope.csv")), "no such file")
    (tmp_path / "short.csv").write_text("1,2,3\n")
    assert_one_line_error(cli("predict", str(base / "digits"), str(tmp_path / "short.csv")), "3 values", "64")
    assert_one_line_error(cli("predict", "nope", str(rows), "--url", server.url), "HTTP 404", "Latest(nope)")
    assert_one_line_error(cli("predict", "digits", str(rows), "--url", "http://127.0.0.1:9"), "cannot reach")
    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"not an image")
    assert_one_line_error(cli("predict", str(base / "image_folder"), str(bad_image)), "Unknown image file format")
