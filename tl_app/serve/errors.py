"""Errors a server answers with: a TensorFlow status code and a message, as TF Serving sends them.

TF Serving turns every failed call into a `tensorflow::Status`; its REST server
answers `{"error": message}` with the HTTP code its `ToHTTPStatusCode`
(`model_servers/http_server.cc`) maps the status code to, and its gRPC server
answers the same code as the gRPC status. `ServingError` is that status here.
"""
import re

# TensorFlow / absl status code names -> HTTP status, as tensorflow_serving/model_servers/http_server.cc maps them.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A request that failed: `code` is a TensorFlow status code name (`INVALID_ARGUMENT`, `NOT_FOUND`, ...).

    Args:
        code: a key of `HTTP_STATUS`.
        message: what went wrong, in one line (TF Serving's wording where it has one).

    Examples:
        >>> error = ServingError("NOT_FOUND", "Servable not found for request: Latest(digits)")
        >>> error.http_status, error.body()
        (404, {'error': 'Servable not found for request: Latest(digits)'})
    """

    def __init__(self, code, message):
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown status code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS[self.code]

    def body(self):
        """The JSON body of the REST answer."""
        return {"error": self.message}

    def grpc_code(self):
        """The `grpc.StatusCode` of the gRPC answer (the same names as TensorFlow's codes)."""
        import grpc

        return getattr(grpc.StatusCode, self.code)


def invalid(message):
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message):
    return ServingError("NOT_FOUND", message)


def from_tensorflow(exc):
    """A ServingError from an error TensorFlow raised while running a signature: its code and the message alone.

    TensorFlow wraps the message in graph context (`{{function_node ...}}`, `Graph execution error:`,
    `Detected at node ...`, call stacks, `[[{{node ...}}]]`, `[Op:...]`); a client needs only the message.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import error_codes_pb2

    if not isinstance(exc, tf.errors.OpError):
        return ServingError("INTERNAL", f"{type(exc).__name__}: {exc}")
    try:
        code = error_codes_pb2.Code.Name(int(exc.error_code))
    except ValueError:
        code = "UNKNOWN"
    return ServingError(code if code in HTTP_STATUS else "UNKNOWN", op_error_message(exc.message))


_CONTEXT = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\]|\s*\[\[\{\{node [^}]*\}\}\]\]")


def op_error_message(message):
    """The user-facing line of a TensorFlow error message (the last line that is not graph context)."""
    lines = []
    for line in str(message).splitlines():
        line = _CONTEXT.sub("", line).strip()
        if not line or line.startswith(("Graph execution error", "Detected at node", "File \"", "Traceback")):
            continue
        lines.append(line)
    return lines[-1] if lines else str(message).strip()
