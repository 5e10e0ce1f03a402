"""`tl-app export RUN_DIR`: export a finished run again, as a new version, without training.

The model is rebuilt from the run's `config.json` (a valid `--config`: recipe, every field) and
given the weights of its last checkpoint (the end-of-phase checkpoint holds the final weights,
early stopping's best ones included), then the usual end of a run follows: serving check, export
(with warmup requests, `models.config`). The data is loaded again for the class names and the
warmup examples. Stages:

    read_run -> serving_check -> restore_weights -> export

Examples:
    >>> result = export_run("runs/digits/20260101-120000")  # doctest: +SKIP
    >>> result.export_path  # doctest: +SKIP
    'saved_models/digits/2'
"""
import os

from tl_app import log
from tl_app.errors import UserError
from tl_app.pipeline import run_dirs
from tl_app.pipeline.context import RunContext, RunOptions, Stage


def check_run_dir(run_dir):
    """UserError unless `run_dir` is a finished run with a config and a checkpoint."""
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: no such run directory (expected runs/<recipe>/<run-id>).")
    if not os.path.isfile(os.path.join(run_dir, "config.json")):
        raise UserError(f"{run_dir}: no config.json, so not a tl_app run directory (expected runs/<recipe>/<run-id>).")
    if not run_dirs.is_complete(run_dir):
        raise UserError(f"{run_dir}: the run is not finished (no {run_dirs.COMPLETE_FILE}); finish it with "
                        f"`tl-app run --resume --run-id {os.path.basename(os.path.normpath(run_dir))} ...` first.")
    if not os.path.isfile(os.path.join(run_dir, "checkpoints", "checkpoint.json")):
        raise UserError(f"{run_dir}: no checkpoint to take the weights from (checkpoints/checkpoint.json).")


class ReadRun(Stage):
    """The run's config, strategy and data (as `prepare`), the run directory as it is, its metrics."""

    name = "read_run"

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def run(self, ctx):
        from tl_app.pipeline import prepare

        prepare.check(ctx)
        prepare.choose_strategy(ctx)
        prepare.load_data(ctx)
        ctx.run_dir = self.run_dir
        ctx.config_dict = run_dirs.read_json(self.run_dir, "config.json")
        metrics = os.path.join(self.run_dir, "metrics.json")
        ctx.metrics = run_dirs.read_json(self.run_dir, "metrics.json") if os.path.isfile(metrics) else {}


class RestoreWeights(Stage):
    """The recipe's model, built as in training, with the weights of the run's last checkpoint."""

    name = "restore_weights"

    def run(self, ctx):
        from tl_app.engine.checkpoints import CheckpointStore
        from tl_app.pipeline.train import build_model

        build_model(ctx)
        checkpoint = CheckpointStore(os.path.join(ctx.run_dir, "checkpoints")).load()
        try:
            ctx.model.set_weights(checkpoint.model_weights)
        except ValueError as exc:
            raise UserError(f"{ctx.run_dir}: its checkpoint does not fit the model its config.json builds ({exc}).") \
                from None
        log.info(f"weights from {checkpoint.path}")


def export_run(run_dir, options=None):
    """Export the finished run `run_dir` again as a new version; returns a RunResult.

    Args:
        run_dir: `runs/<recipe>/<run-id>`.
        options: `RunOptions` (export_dir, serving_check, warmup_examples, strategy); export is always on.
    """
    from tl_app import api
    from tl_app.pipeline.export import Export
    from tl_app.pipeline.serving_check import ServingCheck

    check_run_dir(run_dir)
    loaded = api.load_config_file(os.path.join(run_dir, "config.json"))
    recipe_cls = api.recipe_class(None, loaded)
    recipe = recipe_cls(api.resolve_config(recipe_cls, loaded))
    options = options or RunOptions()
    options.export = True
    ctx = RunContext(recipe, options)
    with ctx.cleanup():
        for stage in recipe.stages([ReadRun(run_dir), ServingCheck(), RestoreWeights(), Export()]):
            if stage.enabled(ctx):
                stage.run(ctx)
    return ctx.result()
