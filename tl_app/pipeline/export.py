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
        model_dir = os.path.join(ctx.options.export_dir, recipe.name)
        # Killed after its export was renamed into place but before it was marked complete: that export
        # is this run's (every worker decides alike: they read the same shared export directory).
        made = savedmodel.export_of_run(model_dir, ctx.continuing) if ctx.continuing else None
        if made:
            savedmodel.remove_stale_exports(model_dir)
            if ctx.is_chief:
                ctx.export_path = made
                log.info(f"exported {made} before the restart; not exporting it again")
            return
        base = model_dir if ctx.is_chief else os.path.join(ctx.scratch, "export", recipe.name)
        # Looked up on the module at run time, so a test can wrap it.
        path = savedmodel.export_model(
            ctx.model,
            recipe.serving_signatures(ctx.model, data.class_names),
            base,
            data.class_names,
            ctx.config_dict,
            ctx.metrics,
            keras_weights=True,
            run_dir=ctx.run_dir if ctx.is_chief else None,
        )
        if ctx.is_chief:
            ctx.export_path = path
            log.info(f"exported {path}")
