"""The `evaluate` stage: the trained model's loss and metrics on the test split, saved and printed."""
from tl_app.evaluate.report import metrics_table
from tl_app.pipeline import run_dirs
from tl_app.pipeline.context import Stage


class Evaluate(Stage):
    """Test metrics (every worker computes them: collectives need all), written and shown by the chief."""

    name = "evaluate"

    def run(self, ctx):
        ctx.metrics = ctx.trainer.evaluate(ctx.data.test)
        if ctx.is_chief:
            run_dirs.write_json(ctx.run_dir, "metrics.json", ctx.metrics)
            print(metrics_table(ctx.metrics, ctx.data.test_split_name), flush=True)
