"""The `tflite` stage: TFLite models of the export just written (`--set tflite=int8`, a list, or `all`).

Runs after `export` on the chief, with the run's recipe and data at hand (int8
calibrates on the training split; every model is evaluated on the test split),
exactly as `tl-app tflite saved_models/<recipe>/<N>` does later for any export.
"""
from tl_app.pipeline.context import Stage


def check_tflite(config, export):
    """Raise UserError before training when `--set tflite` cannot be honoured (it converts the export)."""
    from tl_app.errors import UserError

    if getattr(config, "tflite", None) and not export:
        raise UserError(f"--set tflite={config.tflite} converts the run's export: drop --no-export (or the tflite"
                        " setting); `tl-app tflite EXPORT` converts an export later.")


class TFLite(Stage):
    """`--set tflite=MODES`: a new `saved_models/<recipe>-tflite/<N>/` beside the export, evaluated."""

    name = "tflite"

    def enabled(self, ctx):
        return bool(getattr(ctx.config, "tflite", None)) and ctx.export_path is not None and ctx.is_chief

    def run(self, ctx):
        from tl_app.export.tflite import parse_modes
        from tl_app.export.tflite_package import write_tflite_package

        cfg = ctx.config
        package = write_tflite_package(ctx.export_path, parse_modes(cfg.tflite, given=f"tflite={cfg.tflite}"),
                                       ctx.recipe, data=ctx.data,
                                       calibration_samples_count=cfg.tflite_calibration_samples)
        ctx.tflite_path = package.path
