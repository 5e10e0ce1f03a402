"""TF Serving's gRPC services with the official `tensorflow-serving-api` messages and stubs.

- `tensorflow.serving.PredictionService/Predict` (with `output_filter`) and `/GetModelMetadata`;
- `tensorflow.serving.ModelService/GetModelStatus`.

Clients written for TF Serving work unchanged (`prediction_service_pb2_grpc.PredictionServiceStub`).
Errors are answered with TF Serving's status codes and messages; `Classify`, `Regress` and
`MultiInference` take tf.Example signatures, which tl_app exports do not have (UNIMPLEMENTED).

Examples:
    >>> server = grpc_server(manager, "127.0.0.1", 0)  # doctest: +SKIP
"""
import sys
import traceback

from tl_app.serve import responses
from tl_app.serve.errors import ServingError, invalid

MB = 1024 * 1024


def _spec_of(request):
    """(name, version, label) of a request's model_spec; INVALID_ARGUMENT without one."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    spec = request.model_spec
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return spec.name, version, label


def _answer(context, call):
    try:
        return call()
    except ServingError as exc:
        context.abort(exc.grpc_code(), exc.message)
    except Exception as exc:  # noqa: BLE001  (a bug must not take the server down)
        import grpc

        traceback.print_exc(file=sys.stderr)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


def _servicers(manager):
    from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

    from tl_app.serve.tensor_protos import from_proto, to_proto

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            def call():
                servable = manager.servable(*_spec_of(request))
                inputs = {}
                for name, proto in request.inputs.items():
                    try:
                        inputs[name] = from_proto(proto)
                    except (TypeError, ValueError) as exc:
                        raise invalid(f"input '{name}': not a valid TensorProto ({exc})") from None
                outputs = servable.predict(request.model_spec.signature_name, inputs, list(request.output_filter),
                                           missing_code="FAILED_PRECONDITION")
                response = predict_pb2.PredictResponse()
                response.model_spec.name = servable.name
                response.model_spec.version.value = servable.version
                response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
                for name, value in outputs.items():
                    response.outputs[name].CopyFrom(to_proto(value))
                return response

            return _answer(context, call)

        def GetModelMetadata(self, request, context):
            def call():
                responses.check_metadata_fields(list(request.metadata_field))
                return responses.metadata_response(manager.servable(*_spec_of(request)))

            return _answer(context, call)

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            return _answer(context, lambda: responses.status_response(manager.status(*_spec_of(request))))

    return PredictionService(), ModelService()


def grpc_server(manager, host, port, max_message_bytes=16 * MB, threads=8):
    """A started-later `grpc.Server` with both services on `host:port`; returns (server, bound port).

    Args:
        manager: the `ModelManager`.
        host: address to bind.
        port: port (0: any free one).
        max_message_bytes: larger requests fail with RESOURCE_EXHAUSTED (gRPC's own check).
        threads: requests handled at once.
    """
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    from tl_app.errors import UserError

    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes),
               ("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tl-app-grpc"),
                         options=options, maximum_concurrent_rpcs=threads * 8)
    prediction, model = _servicers(manager)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserError(f"--grpc-port {port}: cannot listen on {address} (in use?); choose another port.")
    return server, bound
