"""A run of a recipe as a pipeline of named stages over one `RunContext`:

    prepare -> serving_check -> train -> evaluate -> gate -> export -> [tflite] -> finish

- `prepare` (`pipeline.prepare`): checks, strategy and numerics, data, run directory and its config.json;
- `serving_check` (`pipeline.serving_check`): starts a fresh `tl-app serve` (its start-up overlaps training)
  whose answers to the export's warmup requests must equal the in-process model's before it is published;
- `train` (`pipeline.train`): build the model under the strategy, init-from / resume, every phase;
- `evaluate` (`pipeline.evaluate`): test predictions -> metrics.json, predictions.csv, figures, TensorBoard, report.md;
- `gate` (`pipeline.gate`): with `--gate`, publish only a model that meets it (retry rounds, rejected/, exit 3);
- `export` (`pipeline.export`): a new SavedModel version with warmup requests, checked before it is
  published, and `models.config` (skipped with `--no-export`);
- `tflite` (`pipeline.tflite`): TFLite models of that export, evaluated (only with `--set tflite=...`);
- `finish` (`pipeline.finish`): complete.json.

A run lives in `runs/<recipe>/<run-id>/`: TensorBoard logs (train/, validation/),
`config.json` (the resolved config plus the strategy it trained under; a valid
`--config`), `checkpoints/` (one per epoch, for `--resume`), `metrics.json`, and
`complete.json` once every stage is done. A run that fails before its first
checkpoint leaves nothing behind. In a multi-worker cluster only the chief writes.

A new stage is a `Stage` subclass in a module of its own, named in `default_stages()`.
"""
from tl_app.pipeline.context import RunContext, RunOptions, RunResult, Stage


def default_stages():
    """The stages of every run, in order (fresh instances)."""
    from tl_app.pipeline.evaluate import Evaluate
    from tl_app.pipeline.explain import Explain
    from tl_app.pipeline.export import Export
    from tl_app.pipeline.finish import Finish
    from tl_app.pipeline.gate import Gate
    from tl_app.pipeline.inspect import Inspect
    from tl_app.pipeline.prepare import Prepare
    from tl_app.pipeline.serving_check import ServingCheck
    from tl_app.pipeline.tflite import TFLite
    from tl_app.pipeline.train import Train

    return [Prepare(), Inspect(), ServingCheck(), Train(), Evaluate(), Explain(), Gate(), Export(), TFLite(), Finish()]


def run_recipe(recipe, options=None, stages=None):
    """Train, evaluate and (optionally) export `recipe`; returns a RunResult.

    Args:
        recipe: a `Recipe` with its resolved config.
        options: `RunOptions` (defaults: runs/, saved_models/, export, auto strategy).
        stages: the stages to run, in order (default: `default_stages()` as the recipe's `stages()` adapts them).
    """
    ctx = RunContext(recipe, options or RunOptions())
    ctx.stages = list(recipe.stages(default_stages()) if stages is None else stages)
    with ctx.cleanup():
        for stage in ctx.stages:
            if stage.enabled(ctx):
                stage.run(ctx)
    return ctx.result()


__all__ = ["RunContext", "RunOptions", "RunResult", "Stage", "default_stages", "run_recipe"]
