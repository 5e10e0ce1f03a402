"""The `phase_results` stage: figures the training phases reported join the run's metrics.

Some phases report figures of their own (`Trainer.results`, kept in every
checkpoint): the text recipes' `adapt` phase, the held-out masked-token
perplexity before and after adaptation. This stage adds them to `ctx.metrics`
(so to metrics.json, the export's metrics and complete.json) and prints them.
A recipe puts it in its stages (`Recipe.stages`): after `evaluate`, or instead
of it when the run has no test split (`text_mlm`).
"""
from tl_app.evaluate.tables import metrics_table
from tl_app.pipeline import run_dirs
from tl_app.pipeline.context import Stage


class PhaseResults(Stage):
    """Add `ctx.trainer.results` to `ctx.metrics`; the chief rewrites metrics.json and prints them.

    Args:
        title: what the printed table is called ("<title> metrics").

    Examples:
        >>> from tl_app.pipeline import default_stages
        >>> stages = default_stages()
        >>> stages.insert([s.name for s in stages].index("evaluate") + 1, PhaseResults("adaptation"))
    """

    name = "phase_results"

    def __init__(self, title="training phase"):
        self.title = title

    def run(self, ctx):
        results = ctx.trainer.results if ctx.trainer is not None else {}
        if not results:
            return
        ctx.metrics = {**(ctx.metrics or {}), **results}
        if ctx.is_chief:
            run_dirs.write_json(ctx.run_dir, "metrics.json", ctx.metrics)
            print(metrics_table(results, self.title), flush=True)
