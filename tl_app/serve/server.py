"""`tl-app serve`: TF Serving's REST and gRPC APIs over a directory of exports, in one process.

REST runs on uvicorn (HTTP/1.1 keep-alive, httptools' parser), gRPC on grpcio's server, and both
ask one `ModelManager`, which polls the model source and loads, warms up and unloads versions.
SIGTERM and Ctrl-C stop it cleanly: uvicorn stops accepting, finishes the requests in flight,
then the gRPC server is given a few seconds to finish its own.

Examples:
    >>> from tl_app.serve.sources import DirectorySource
    >>> serve(DirectorySource("saved_models"), ServerOptions(rest_port=0, grpc_port=0))  # doctest: +SKIP
"""
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Optional

from tl_app import log

MB = 1024 * 1024


@dataclass
class ServerOptions:
    """How `tl-app serve` listens and what it accepts.

    Args:
        host: address to bind (127.0.0.1 unless asked: nothing outside this machine reaches it).
        rest_port, grpc_port: ports (0: any free one; the chosen ones are printed).
        poll_seconds: how often the model directories are read again.
        max_body_mb: REST bodies (and gRPC messages) over this get 413 (RESOURCE_EXHAUSTED).
        max_batch_size: a larger batch in one request gets 400 (INVALID_ARGUMENT).
        max_concurrent_requests: REST requests in flight beyond this get 503.
        threads: model runs at once (REST) and gRPC handler threads.
        grace_seconds: at shutdown, how long requests in flight may take to finish.
        batching: `batching.BatchingParameters` to batch concurrent requests (TF Serving's --enable_batching);
            None: every request runs alone.
        intra_op_threads, inter_op_threads: TensorFlow's thread pools (TF Serving's
            --tensorflow_intra_op_parallelism, --tensorflow_inter_op_parallelism); 0: TensorFlow's choice.
    """

    host: str = "127.0.0.1"
    rest_port: int = 8501
    grpc_port: int = 8500
    poll_seconds: float = 1.0
    max_body_mb: float = 16
    max_batch_size: int = 256
    max_concurrent_requests: int = 64
    threads: int = 4
    grace_seconds: float = 5.0
    batching: Optional[object] = None
    intra_op_threads: int = 0
    inter_op_threads: int = 0

    @property
    def max_body_bytes(self):
        return int(self.max_body_mb * MB)


def import_tensorflow():
    """TensorFlow without its start-up noise, and without Keras (exports need none: faster start)."""
    from tl_app.quiet import set_quiet_environment, stderr_silenced

    set_quiet_environment()
    with stderr_silenced():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    return tf


def _set_tensorflow_threads(options):
    """Size TensorFlow's thread pools, before the first model loads (TensorFlow fixes them at its first op)."""
    if not (options.intra_op_threads or options.inter_op_threads):
        return
    import tensorflow as tf

    from tl_app.errors import UserError

    threading = tf.config.threading
    try:
        if options.intra_op_threads:
            threading.set_intra_op_parallelism_threads(options.intra_op_threads)
        if options.inter_op_threads:
            threading.set_inter_op_parallelism_threads(options.inter_op_threads)
    except RuntimeError:
        raise UserError("--intra-op-threads / --inter-op-threads: TensorFlow has already run in this process, its "
                        "thread pools are fixed; serve from a new process (tl-app serve).") from None
    log.info(f"TensorFlow threads: intra-op {threading.get_intra_op_parallelism_threads() or 'auto'}, "
             f"inter-op {threading.get_inter_op_parallelism_threads() or 'auto'}")


def _rest_socket(host, port):
    from tl_app.errors import UserError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # clients connect (and queue) from now on, before uvicorn's loop accepts them
    except OSError as exc:
        raise UserError(f"--rest-port {port}: cannot listen on {host}:{port} ({exc.strerror}); choose another port "
                        "or --host.") from None
    sock.set_inheritable(True)
    return sock


PARENT_ENV = "TL_APP_SERVE_PARENT"  # a pid: stop when that process is gone (the serving check's server)


def _stop_with_parent(rest):
    """A server started for another process (the serving check) stops when that process dies, however it dies."""
    import os
    import threading

    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return

    def watch():
        while os.getppid() == int(parent):
            threading.Event().wait(1.0)
        rest.should_exit = True

    threading.Thread(target=watch, name="tl-app-parent-watch", daemon=True).start()


def serve(source, options=None, on_ready=None):
    """Serve the models of `source` until SIGTERM or Ctrl-C.

    Args:
        source: a `tl_app.serve.sources.ModelSource`.
        options: `ServerOptions`.
        on_ready: called with (rest_port, grpc_port) once both listen.
    """
    import uvicorn

    from tl_app.serve.batching import Batcher
    from tl_app.serve.grpc_service import grpc_server
    from tl_app.serve.manager import ModelManager
    from tl_app.serve.rest import rest_app

    options = options or ServerOptions()
    _set_tensorflow_threads(options)
    batcher = Batcher(options.batching) if options.batching is not None else None
    manager = ModelManager(source, poll_seconds=options.poll_seconds, max_batch_size=options.max_batch_size,
                           batcher=batcher)
    rest_sock = _rest_socket(options.host, options.rest_port)
    grpc, grpc_port = grpc_server(manager, options.host, options.grpc_port, options.max_body_bytes,
                                  threads=max(options.threads, 4))
    app = rest_app(manager, max_body_bytes=options.max_body_bytes,
                   max_concurrent_requests=options.max_concurrent_requests, compute_threads=options.threads)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_keep_alive=30, timeout_graceful_shutdown=options.grace_seconds,
                            limit_concurrency=options.max_concurrent_requests * 4)
    rest = uvicorn.Server(config)
    rest_port = rest_sock.getsockname()[1]
    # A stop asked for before uvicorn installs its own signal handlers (in run()) must still be a clean one.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: setattr(rest, "should_exit", True))
    _stop_with_parent(rest)
    grpc.start()
    manager.start()
    if batcher is not None:
        log.info(f"batching: up to {options.batching.max_batch_size} examples a call, "
                 f"{options.batching.batch_timeout_micros} us timeout, {options.batching.num_batch_threads} thread(s)")
    log.info(f"serving {source.description}: REST http://{options.host}:{rest_port}/v1/models/<name>, "
             f"gRPC {options.host}:{grpc_port} (Ctrl-C stops)")
    if on_ready is not None:
        on_ready(rest_port, grpc_port)
    try:
        rest.run(sockets=[rest_sock])  # returns after SIGINT/SIGTERM, once requests in flight are answered
    finally:
        grpc.stop(options.grace_seconds).wait()
        manager.stop()
        if batcher is not None:
            batcher.stop()
        rest_sock.close()
        log.info("stopped")
        sys.stdout.flush()
