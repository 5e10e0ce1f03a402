"""`tl-app tflite MODEL_DIR`: TFLite models of an existing export, quantized, evaluated against it."""
import click

from tl_app.cli.group import cli


@cli.command("tflite")
@click.argument("model_dir", metavar="MODEL_DIR")
@click.option("--quantize", default="all", show_default=True, metavar="MODES",
              help="none (float32), dynamic (int8 weights), float16, int8 (integer-only, calibrated), or all; "
                   "several comma-separated, e.g. dynamic,int8.")
@click.option("--calibration-samples", type=int, default=200, show_default=True, metavar="N",
              help="int8: training examples that calibrate the activation ranges.")
@click.option("--data-dir", default=None, metavar="DIR",
              help="Where the recipe's data is now, if not where the export's config says "
                   "(int8 calibrates on its training split; the evaluation runs on its test split).")
@click.option("--no-evaluate", is_flag=True,
              help="Convert only: no test-split accuracy, agreement or latency (no data needed, except for int8).")
@click.option("--latency-runs", type=int, default=100, show_default=True, metavar="N",
              help="Single-example calls timed per model for the p50 latency.")
def tflite_command(model_dir, quantize, calibration_samples, data_dir, no_evaluate, latency_runs):
    """Convert an export to TFLite and compare every model with the float SavedModel.

    \b
    MODEL_DIR is an export's version directory (saved_models/digits/3) or its model
    directory (saved_models/digits: the newest version). The export is only read:
    the models go to a new saved_models/<model>-tflite/<N>/ with labels.txt,
    input.json (input shape, dtype, value range, quantization) and evaluation.json
    (size, test accuracy, agreement with the SavedModel, p50 latency at batch 1),
    and the table is printed. The recipe and its data come from the export's
    assets.extra/config.json, so no training runs. Images: decode and resize
    outside the model (TFLite has no image decoders). Text: tokenize with the
    vocab.txt and tokenizer.json written beside the models. docs/tflite.md has more.
    """
    from tl_app.errors import UserError
    from tl_app.export.tflite import parse_modes

    modes = parse_modes(quantize)
    if calibration_samples < 1:
        raise UserError(f"--calibration-samples {calibration_samples}: must be 1 or more (100-500 is usual).")
    if latency_runs < 1:
        raise UserError(f"--latency-runs {latency_runs}: must be 1 or more.")
    from tl_app.api import recipe_of_export
    from tl_app.export.saved_export import resolve_export

    export_dir = resolve_export(model_dir)
    recipe = recipe_of_export(export_dir, data_dir)

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.export.tflite_package import write_tflite_package

    write_tflite_package(export_dir, modes, recipe, calibration_samples_count=calibration_samples,
                         evaluate=not no_evaluate, latency_runs=latency_runs)
