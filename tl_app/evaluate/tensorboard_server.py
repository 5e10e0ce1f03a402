"""TensorBoard over the runs directory, bound to 127.0.0.1 unless told otherwise (`tl-app tensorboard`).

TensorBoard's own program object with every default plugin (scalars, images,
text, graphs, HParams, ...); only the binding differs from `tensorboard
--logdir`: a taken port is an error that names a free one (TensorBoard alone
would quietly move to another port when none was given, or print a traceback).
"""
import os
import socket
from dataclasses import dataclass
from typing import Any

from tl_app.errors import UserError

DEFAULT_PORT = 6006


def port_is_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def free_port_near(host, port, tries=20):
    """The first free port after `port` (for the message), or None."""
    return next((p for p in range(port + 1, min(port + 1 + tries, 65536)) if port_is_free(host, p)), None)


@dataclass
class Server:
    """A TensorBoard web server: `serve_forever()` in this thread (the CLI) or another; `shutdown()` stops it."""

    url: str
    server: Any

    def serve_forever(self):
        self.server.serve_forever()

    def shutdown(self):
        self.server.shutdown()
        self.server.server_close()


def start(logdir="runs", host="127.0.0.1", port=DEFAULT_PORT, load_fast="auto", reload_interval=5.0):
    """A configured TensorBoard server on `host:port` over `logdir` (not yet serving: call `serve_forever`).

    Args:
        logdir: the runs directory (`runs`, or `runs/<recipe>` for one recipe's runs).
        host: the address to bind; 127.0.0.1 keeps it on this machine.
        port: the port; one in use is a UserError naming a free one.
        load_fast: TensorBoard's `--load_fast` (`auto` uses its fast data server when installed).
        reload_interval: seconds between reloads of the event files.

    Examples:
        >>> server = start("runs", port=0)  # doctest: +SKIP
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    from tensorboard import default, program

    if not os.path.isdir(logdir):
        raise UserError(f"--logdir {logdir}: no such directory; runs write there (tl-app run RECIPE), or name another.")
    if port and not port_is_free(host, port):
        other = free_port_near(host, port)
        suggestion = f"; try --port {other}" if other else "; choose another --port"
        raise UserError(f"port {port} on {host} is already in use (another TensorBoard?){suggestion}.")
    board = program.TensorBoard(plugins=default.get_plugins(), server_class=program.WerkzeugServer)
    board.configure(argv=[None], logdir=os.path.abspath(logdir), host=host, port=port, load_fast=load_fast,
                    reload_interval=reload_interval)
    try:
        # TensorBoard.main() and launch() build their server this way; launch() gives no handle to stop it.
        server = board._make_server()
    except program.TensorBoardServerException as exc:
        raise UserError(f"TensorBoard on {host}:{port}: {exc.msg}; choose another --port or --host.") from None
    return Server(server.get_url(), server)
