"""TF Serving's REST API (`g3doc/api_rest.md`) as a Starlette app, served by uvicorn (`tl_app.serve.server`).

    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]             version status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata    signature defs
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict     row (`instances`) or columnar (`inputs`)

Paths are matched with TF Serving's own expressions (case-insensitive) on the undecoded path, then
the name and label are percent-decoded: `%2F` or `..` in a name is only ever a name looked up among
the models the server loaded, never a path. Errors answer `{"error": "..."}` with TF Serving's HTTP
codes. Bodies over `max_body_bytes` get 413 (never kept in memory); more than
`max_concurrent_requests` requests in flight get 503; at most `compute_threads` run the model at a time.
`:classify` and `:regress` take tf.Example signatures, which tl_app exports do not have: 501.

Examples:
    >>> from tl_app.serve.manager import ModelManager
    >>> from tl_app.serve.sources import DirectorySource
    >>> app = rest_app(ModelManager(DirectorySource("saved_models")))  # doctest: +SKIP
"""
import re
import sys
import traceback
from urllib.parse import unquote

from tl_app.serve import json_tensor, responses
from tl_app.serve.errors import ServingError, invalid

PREDICT_PATH = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)")
STATUS_PATH = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?")
INT64_MAX = 2 ** 63 - 1
MB = 1024 * 1024


class RestApi:
    """The request handling behind the app (plain functions of the manager; the app adds HTTP around them).

    Args:
        manager: the `ModelManager`.
        max_body_bytes: larger request bodies get 413.
        max_concurrent_requests: more requests in flight get 503.
        compute_threads: requests whose model runs at once (the rest wait their turn).
    """

    def __init__(self, manager, max_body_bytes=16 * MB, max_concurrent_requests=64, compute_threads=4):
        self.manager = manager
        self.max_body_bytes = max_body_bytes
        self.max_concurrent_requests = max_concurrent_requests
        self.compute_threads = compute_threads

    def _spec(self, http_method, path, match):
        name, version, label = match.group(1), match.group(2), match.group(3)
        name = unquote(name) if name else ""
        if version is not None:
            if int(version) > INT64_MAX:
                raise invalid(f"Failed to convert version: {version} to numeric.")
            version = int(version)
        if label is not None:
            label = unquote(label)
        return name, version, label

    def handle(self, http_method, path, body):
        """(HTTP status, JSON body bytes) for one request; never raises."""
        try:
            return 200, self._dispatch(http_method, path, body)
        except ServingError as exc:
            return exc.http_status, responses.dumps(exc.body())
        except Exception as exc:  # noqa: BLE001  (a bug must not take the server down)
            traceback.print_exc(file=sys.stderr)
            return 500, responses.dumps({"error": f"internal error: {type(exc).__name__}: {exc}"})

    def _dispatch(self, http_method, path, body):
        malformed = invalid(f"Malformed request: {http_method} {path}")
        if http_method == "POST":
            match = PREDICT_PATH.fullmatch(path)
            if not match:
                raise malformed
            name, version, label = self._spec(http_method, path, match)
            if match.group(4) != "predict":
                if match.group(4) in ("classify", "regress"):
                    raise ServingError("UNIMPLEMENTED", f":{match.group(4)} takes tf.Example signatures "
                                       f"(tensorflow/serving/{match.group(4)}); tl_app exports have predict "
                                       "signatures: use :predict")
                raise malformed
            return self.predict(name, version, label, body)
        if http_method == "GET":
            match = STATUS_PATH.fullmatch(path)
            if not match:
                raise malformed
            name, version, label = self._spec(http_method, path, match)
            if not name:
                raise invalid("Missing model name in request.")
            if match.group(4):
                return self.metadata(name, version, label)
            return responses.dumps(responses.status_json(
                responses.status_response(self.manager.status(name, version, label))))
        raise malformed

    def predict(self, name, version, label, body):
        servable = self.manager.servable(name, version, label)
        parsed = json_tensor.parse_predict_request(body, servable.input_dtypes)
        outputs = servable.predict(parsed.signature_name, parsed.inputs)
        return json_tensor.predict_response(outputs, parsed.row_format)

    def metadata(self, name, version, label):
        servable = self.manager.servable(name, version, label)
        return responses.dumps(responses.metadata_json(responses.metadata_response(servable)))


def rest_app(manager, **limits):
    """The Starlette app of TF Serving's REST API over `manager` (limits: see `RestApi`)."""
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    api = RestApi(manager, **limits)
    compute = anyio.CapacityLimiter(api.compute_threads)
    in_flight = [0]

    def answer(status, body):
        return Response(body, status_code=status, media_type="application/json")

    def error(code, message):
        failure = ServingError(code, message)
        return answer(failure.http_status, responses.dumps(failure.body()))

    # An oversized body is read to its end and dropped (up to this much), so that a client that sends it all
    # before reading the answer gets the 413 instead of a broken connection; a bigger one is cut off.
    drain_limit = max(4 * api.max_body_bytes, 64 * 1024 * 1024)

    async def read_body(request):
        """The body, or None (over the limit: the caller answers 413)."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > drain_limit:
            return None
        body, size = bytearray(), 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > drain_limit:
                return None
            if size <= api.max_body_bytes:
                body += chunk
        return bytes(body) if size <= api.max_body_bytes else None

    async def endpoint(request):
        if in_flight[0] >= api.max_concurrent_requests:
            return error("UNAVAILABLE", f"the server has {api.max_concurrent_requests} requests in flight, its limit "
                                        "(tl-app serve --max-concurrent-requests); retry later")
        in_flight[0] += 1
        try:
            path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
            body = b""
            if request.method == "POST":
                try:
                    body = await read_body(request)
                except ClientDisconnect:
                    return Response(status_code=499)  # the client is gone: nobody reads this
                if body is None:
                    response = error("RESOURCE_EXHAUSTED", f"request body over {api.max_body_bytes} bytes, this "
                                                           "server's limit (tl-app serve --max-body-mb)")
                    response.status_code = 413
                    return response
            status, payload = await anyio.to_thread.run_sync(api.handle, request.method, path, body, limiter=compute)
            return answer(status, payload)
        finally:
            in_flight[0] -= 1

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
