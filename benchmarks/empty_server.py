"""A server that answers every predict request without running anything: the floor of the serving stack.

REST on uvicorn + Starlette (the body is read, a fixed JSON answer is sent) and gRPC on grpcio's server
(the `PredictRequest` is parsed by grpcio, an empty `PredictResponse` is sent), configured as
`tl-app serve` configures them. No server built on these libraries can answer faster than this one, so
its requests/s, next to in-process calls of a model, bound what any such server can reach for that model.
`benchmarks/serving.py` starts it (`--floor`); it prints the ready line `tl-app serve` prints.

    python benchmarks/empty_server.py    # Ctrl-C stops it
"""
import socket
import sys
from concurrent import futures


def grpc_server():
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Empty(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return predict_pb2.PredictResponse()

    # As tl_app.serve.grpc_service.grpc_server: a pool of handler threads, 16 MB messages.
    options = [("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options, maximum_concurrent_rpcs=32)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Empty(), server)
    return server, server.add_insecure_port("127.0.0.1:0")


def rest_server():
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request):
        await request.body()
        return Response(b'{"predictions": []}', media_type="application/json")

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
    # As tl_app.serve.server.serve configures uvicorn.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    return uvicorn.Server(config), sock


def main():
    grpc, grpc_port = grpc_server()
    rest, sock = rest_server()
    grpc.start()
    print(f"serving nothing: REST http://127.0.0.1:{sock.getsockname()[1]}/v1/models/<name>, "
          f"gRPC 127.0.0.1:{grpc_port}", flush=True)
    try:
        rest.run(sockets=[sock])  # as tl-app serve runs it (uvloop where installed)
    finally:
        grpc.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
