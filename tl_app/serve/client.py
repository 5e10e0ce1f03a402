"""A small client of TF Serving's REST API (any TF Serving, or `tl-app serve`): `tl-app predict --url` and the serving check.

Plain HTTP/1.1 with keep-alive (`http.client`); bodies as `g3doc/api_rest.md` writes them:
columnar `{"inputs": {...}}`, strings always as `{"b64": ...}` (exact for binary and text alike).

Examples:
    >>> import numpy as np
    >>> predict_body({"pixels": np.zeros([1, 2], np.float32)})
    b'{"inputs": {"pixels": [[0.0, 0.0]]}}'
    >>> client = RestClient("http://127.0.0.1:8501")  # doctest: +SKIP
    >>> client.predict("digits", {"pixels": np.zeros([1, 8, 8], np.float32)})["class_name"]  # doctest: +SKIP
    ['0']
"""
import base64
import http.client
import json
from urllib.parse import quote, urlsplit

import numpy as np

from tl_app.errors import UserError


def _json_ready(array):
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        flat = [{"b64": base64.b64encode(v.encode("utf-8") if isinstance(v, str) else bytes(v)).decode("ascii")}
                for v in array.reshape(-1)]
        shaped = np.empty(len(flat), dtype=object)
        shaped[:] = flat
        return shaped.reshape(array.shape).tolist()
    return array.tolist()


def predict_body(inputs, signature_name=None):
    """A columnar predict body for `inputs` (name -> array)."""
    payload = {"inputs": {name: _json_ready(value) for name, value in inputs.items()}}
    if signature_name:
        payload["signature_name"] = signature_name
    return json.dumps(payload).encode("utf-8")


def model_path(name, version=None, label=None):
    path = f"/v1/models/{quote(name, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{quote(label, safe='')}"
    return path


class RestError(Exception):
    """A non-200 answer: `status` and TF Serving's error message."""

    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class RestClient:
    """One keep-alive connection to a TF Serving REST endpoint.

    Args:
        url: `http://HOST:PORT` (TF Serving's REST port, 8501 by default).
        timeout: seconds per request.
    """

    def __init__(self, url, timeout=60):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise UserError(f"--url {url}: expected http://HOST:PORT (TF Serving's REST port, e.g. "
                            "http://127.0.0.1:8501).")
        self.url = url
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout = timeout
        self._connection = None

    def request(self, method, path, body=None):
        """(status, parsed JSON) of one request; OSError when the server cannot be reached."""
        for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: one fresh retry
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
                response = self._connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
            except BaseException:
                self.close()  # a connection in the middle of a request cannot take another
                raise
        try:
            return response.status, json.loads(data) if data else {}
        except json.JSONDecodeError:
            return response.status, {"error": data[:200].decode("utf-8", "replace")}

    def _ok(self, method, path, body=None):
        status, payload = self.request(method, path, body)
        if status != 200:
            raise RestError(status, payload.get("error", payload))
        return payload

    def status(self, name, version=None, label=None):
        return self._ok("GET", model_path(name, version, label))

    def metadata(self, name, version=None, label=None):
        return self._ok("GET", model_path(name, version, label) + "/metadata")

    def predict(self, name, inputs, version=None, label=None, signature_name=None):
        """The `outputs` of a columnar predict request (one output: its value; several: name -> value)."""
        body = predict_body(inputs, signature_name)
        return self._ok("POST", model_path(name, version, label) + ":predict", body)["outputs"]

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None
