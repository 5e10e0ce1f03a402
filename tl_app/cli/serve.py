"""`tl-app serve`, `tl-app label` and `tl-app models-config`: serve exports as TF Serving does, and its config file."""
import click

from tl_app.cli.group import cli


@cli.command("serve")
@click.argument("base_dir", required=False, default="saved_models", metavar="[BASE_DIR]")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface: only behind a firewall or in a container).")
@click.option("--rest-port", type=click.IntRange(0, 65535), default=8501, show_default=True,
              help="REST port (TF Serving's --rest_api_port); 0 picks a free one.")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=8500, show_default=True,
              help="gRPC port (TF Serving's --port); 0 picks a free one.")
@click.option("--model-config", metavar="FILE",
              help="Serve exactly the models of this ModelServerConfig file, at its base paths "
                   "(TF Serving's --model_config_file).")
@click.option("--model-name", help="Serve one model under this name (with --model-base-path; TF Serving's --model_name).")
@click.option("--model-base-path", metavar="DIR", help="That model's directory of versions (TF Serving's --model_base_path).")
@click.option("--poll-seconds", type=click.FloatRange(0.05), default=1.0, show_default=True,
              help="How often new and removed versions are looked for (TF Serving's --file_system_poll_wait_seconds).")
@click.option("--max-body-mb", type=click.FloatRange(0.001), default=16.0, show_default=True,
              help="Larger REST bodies get 413, larger gRPC messages RESOURCE_EXHAUSTED.")
@click.option("--max-batch-size", type=click.IntRange(1), default=256, show_default=True,
              help="A request with more examples gets 400 (INVALID_ARGUMENT).")
@click.option("--max-concurrent-requests", type=click.IntRange(1), default=64, show_default=True,
              help="REST requests in flight beyond this get 503.")
@click.option("--threads", type=click.IntRange(1), default=4, show_default=True,
              help="Requests whose model runs at the same time.")
@click.option("--intra-op-threads", type=click.IntRange(0), default=0, show_default=True,
              help="Threads one TensorFlow op may use (TF Serving's --tensorflow_intra_op_parallelism); "
                   "0: TensorFlow's choice. 1 often lowers batch-1 latency; see docs/serving.md.")
@click.option("--inter-op-threads", type=click.IntRange(0), default=0, show_default=True,
              help="TensorFlow ops run at once (TF Serving's --tensorflow_inter_op_parallelism); 0: TensorFlow's choice.")
@click.option("--enable-batching", is_flag=True,
              help="Run concurrent requests to a signature as one batch (TF Serving's --enable_batching).")
@click.option("--batching-parameters-file", metavar="FILE",
              help="TF Serving's BatchingParameters text proto (max_batch_size, batch_timeout_micros, "
                   "num_batch_threads, ...); implies --enable-batching. See deploy/batching_parameters.txt.")
def serve_command(base_dir, host, rest_port, grpc_port, model_config, model_name, model_base_path, poll_seconds,
                  max_body_mb, max_batch_size, max_concurrent_requests, threads, intra_op_threads, inter_op_threads,
                  enable_batching, batching_parameters_file):
    """Serve the exports under BASE_DIR (default saved_models) with TF Serving's REST and gRPC APIs.

    \b
    Every model directory under BASE_DIR is served (its newest version, or the version policy and
    labels of BASE_DIR/models.config); versions that appear later are loaded, and each reports
    AVAILABLE only after its warmup requests ran. Clients written for TF Serving work unchanged:
      curl http://127.0.0.1:8501/v1/models/digits
      curl -d '{"instances": [[[0, 0, ...]]]}' http://127.0.0.1:8501/v1/models/digits:predict
    and gRPC with tensorflow-serving-api's PredictionServiceStub on 127.0.0.1:8500.
    docs/serving.md has the details and the real TF Serving (docker, Kubernetes).
    """
    import os

    from tl_app.errors import UserError
    from tl_app.serve.sources import source_for

    if not (model_config or model_name or model_base_path) and not os.path.isdir(base_dir):
        raise UserError(f"{base_dir}: no such directory of exports; train one first (`tl-app run digits`) or name "
                        "the directory that holds saved_models/<model>/<version>/.")
    source = source_for(base_dir, model_config, model_name, model_base_path)
    source.models()  # a models.config that does not parse: one line now, not a server that serves nothing
    from tl_app.serve.batching import BatchingParameters, read_batching_parameters

    batching = read_batching_parameters(batching_parameters_file) if batching_parameters_file else \
        BatchingParameters() if enable_batching else None
    from tl_app.serve.server import ServerOptions, import_tensorflow, serve

    import_tensorflow()
    serve(source, ServerOptions(host=host, rest_port=rest_port, grpc_port=grpc_port, poll_seconds=poll_seconds,
                                max_body_mb=max_body_mb, max_batch_size=max_batch_size,
                                max_concurrent_requests=max_concurrent_requests, threads=threads,
                                batching=batching, intra_op_threads=intra_op_threads,
                                inter_op_threads=inter_op_threads))


@cli.command("label")
@click.argument("model")
@click.argument("version", type=int)
@click.argument("label")
@click.option("--base-dir", default="saved_models", show_default=True, help="The directory of exports.")
def label_command(model, version, label, base_dir):
    """Point version label LABEL (stable, canary, ...) of MODEL at VERSION in BASE_DIR/models.config.

    TF Serving and `tl-app serve` then answer /v1/models/MODEL/labels/LABEL with that version
    (a running server picks the change up at its next poll).
    """
    from tl_app.export import models_config

    click.echo(models_config.set_label(base_dir, model, version, label))


@cli.command("models-config")
@click.argument("base_dir", required=False, default="saved_models", metavar="[BASE_DIR]")
@click.option("--base-path", metavar="DIR",
              help="The directory the model server sees BASE_DIR as (e.g. /models in the tensorflow/serving "
                   "container; default: the one the file already names, else BASE_DIR's absolute path).")
def models_config_command(base_dir, base_path):
    """Write BASE_DIR/models.config for TF Serving's --model_config_file (every export also rewrites it).

    One entry per model directory; version policies and labels already in the file are kept.
    """
    import os

    from tl_app.errors import UserError
    from tl_app.export import models_config

    if not os.path.isdir(base_dir):
        raise UserError(f"{base_dir}: no such directory of exports.")
    if base_path is not None and not os.path.isabs(base_path):
        raise UserError(f"--base-path {base_path}: TF Serving needs an absolute path (e.g. /models).")
    config = models_config.update(base_dir, base_path)
    names = [c.name for c in config.model_config_list.config]
    where = os.path.dirname(config.model_config_list.config[0].base_path) if names else "-"
    click.echo(f"{os.path.join(base_dir, models_config.CONFIG_FILE)}: {len(names)} model(s) "
               f"({', '.join(names) or 'none'}), base paths under {where}")
