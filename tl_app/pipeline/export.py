"""The `export` stage: a new SavedModel version of the trained model (skipped with `--no-export`)."""
import os

from tl_app import log
from tl_app.export import savedmodel
from tl_app.pipeline.context import Stage


def write_model(ctx, model_dir, metrics):
    """A complete SavedModel version of the trained model under `model_dir` (serving signatures, labels,
    config, `metrics`, Keras weights); returns its path. Also how the gate keeps a rejected model."""
    recipe, data = ctx.recipe, ctx.data
    # Looked up on the module at run time, so a test can wrap it.
    return savedmodel.export_model(ctx.model, recipe.serving_signatures(ctx.model, data.class_names), model_dir,
                                   data.class_names, ctx.config_dict, metrics, keras_weights=True)


class Export(Stage):
    """Every worker exports (reading distributed variables may need all of them); only the chief's is kept."""

    name = "export"

    def enabled(self, ctx):
        return ctx.options.export

    def run(self, ctx):
        base = ctx.options.export_dir if ctx.is_chief else os.path.join(ctx.scratch, "export")
        metrics = {**ctx.metrics, "gate": ctx.gate} if ctx.gate else ctx.metrics  # a passed gate's decision
        path = write_model(ctx, os.path.join(base, ctx.recipe.name), metrics)
        if ctx.is_chief:
            ctx.export_path = path
            log.info(f"exported {path}")
