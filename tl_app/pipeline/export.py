"""The `export` stage: a new SavedModel version of the trained model (skipped with `--no-export`)."""
import os

from tl_app import log
from tl_app.export import savedmodel
from tl_app.pipeline.context import Stage


class Export(Stage):
    """Every worker exports (reading distributed variables may need all of them); only the chief's is kept."""

    name = "export"

    def enabled(self, ctx):
        return ctx.options.export

    def run(self, ctx):
        recipe, data = ctx.recipe, ctx.data
        base = ctx.options.export_dir if ctx.is_chief else os.path.join(ctx.scratch, "export")
        # Looked up on the module at run time, so a test can wrap it.
        path = savedmodel.export_model(
            ctx.model,
            recipe.serving_signatures(ctx.model, data.class_names),
            os.path.join(base, recipe.name),
            data.class_names,
            ctx.config_dict,
            ctx.metrics,
            keras_weights=True,
            extra_files=recipe.export_files(ctx.model),
        )
        if ctx.is_chief:
            ctx.export_path = path
            log.info(f"exported {path}")
