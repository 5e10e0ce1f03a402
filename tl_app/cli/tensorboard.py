"""`tl-app tensorboard`: TensorBoard over the runs, on this machine only unless told otherwise."""
import click

from tl_app.cli.group import cli


@cli.command("tensorboard")
@click.option("--logdir", default="runs", show_default=True, help="The runs directory (or runs/<recipe>).")
@click.option("--port", type=int, default=6006, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind: 127.0.0.1 keeps TensorBoard on this machine; 0.0.0.0 opens it to the network.")
def tensorboard_command(logdir, port, host):
    """Start TensorBoard on the runs and print its address (Ctrl-C stops it).

    \b
    Each run is runs/<recipe>/<run-id>/: epoch scalars with the phase of each epoch
    (train/, validation/), confusion matrices, per-class tables, example predictions
    and the model graph (test/), and an HParams record to compare runs side by side.
    """
    from tl_app.evaluate.tensorboard_server import start

    server = start(logdir, host, port)
    click.echo(f"TensorBoard at {server.url} (logdir {logdir}); Ctrl-C stops it", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
