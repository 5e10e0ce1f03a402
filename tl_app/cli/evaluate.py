"""`tl-app evaluate`: score an export through its serving signature, with the same report a run writes."""
import click

from tl_app.cli.group import cli


@cli.command("evaluate")
@click.argument("model_dir")
@click.option("--data-dir", default=None, help="Data to evaluate on (default: the data_dir in the export's config).")
@click.option("--split", default="test", show_default=True, metavar="NAME",
              help="test, validation or train, as the recipe splits the data.")
@click.option("--output-dir", default=None, metavar="DIR",
              help="Where to write the results (default: <logdir>/<recipe>/eval-<timestamp>/).")
@click.option("--logdir", default="runs", show_default=True, help="Base of the default output directory.")
def evaluate_command(model_dir, data_dir, split, output_dir, logdir):
    """Evaluate the export MODEL_DIR through its serving_default signature.

    \b
    MODEL_DIR is a version directory (saved_models/digits/3) or a model directory
    (saved_models/digits: its newest version). The data loads as the export's saved
    config says (its recipe and fields), or from --data-dir; its classes must be the
    export's labels. Writes metrics.json, predictions.csv, confusion_matrix.png,
    reliability.png, explanations of the most confident mistakes (gradcam.png
    for images, attention_rollout.png on a ViT base, token_attributions.png
    for texts) and report.md, and prints the metrics and per-class tables.
    """
    from tl_app.evaluate.exported import SPLITS, version_dir
    from tl_app.errors import UserError

    if split not in SPLITS:  # mistakes cost no TensorFlow start-up
        raise UserError(f"--split {split}: choose one of {', '.join(SPLITS)}.")
    version_dir(model_dir)
    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app import log
    from tl_app.evaluate.exported import evaluate_export

    evaluation, directory = evaluate_export(model_dir, data_dir, split, output_dir, logdir)
    click.echo(evaluation.metrics_table())
    click.echo(evaluation.per_class_table())
    log.info(f"report: {directory}/report.md; predictions: {directory}/predictions.csv")
