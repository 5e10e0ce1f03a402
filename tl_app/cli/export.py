"""`tl-app export RUN_DIR`: export a finished run again as a new SavedModel version."""
import click

from tl_app.cli.group import cli


@cli.command("export")
@click.argument("run_dir")
@click.option("--export-dir", default="saved_models", show_default=True,
              help="Base directory of exports: <export-dir>/<recipe>/<version>/.")
@click.option("--no-serving-check", is_flag=True,
              help="Publish without first serving the export in a fresh `tl-app serve` and comparing answers.")
@click.option("--warmup-examples", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="Validation examples written into the export as TF Serving warmup requests.")
def export_command(run_dir, export_dir, no_serving_check, warmup_examples):
    """Export the finished run RUN_DIR (runs/<recipe>/<run-id>) again as a new version.

    The model is rebuilt from RUN_DIR/config.json and its last checkpoint's weights; the data is
    read again for the class names and warmup examples. Earlier versions are never touched.
    """
    from tl_app.pipeline.reexport import check_run_dir

    check_run_dir(run_dir)  # seconds, before TensorFlow loads
    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.pipeline import RunOptions
    from tl_app.pipeline.reexport import export_run

    options = RunOptions(export_dir=export_dir, strategy="one_device", warmup_examples=warmup_examples)
    if no_serving_check:
        options.serving_check = False
    export_run(run_dir, options)  # logs "exported saved_models/<recipe>/<N>"
