"""One `tl-app tune` trial: a run of the recipe's own pipeline (prepare, train) with the trial's values.

A trial is a run directory like any other (`<tune-dir>/trials/<recipe>/<stage>_<trial-id>/`: TensorBoard
logs, config.json, checkpoints), so what is tuned is what `tl-app run` trains, a killed trial continues
from its last checkpoint, and TensorBoard's HParams dashboard compares every trial. Its score is a
validation figure, never a test one: the run neither evaluates nor exports.
"""
import json
import os

from tl_app import log
from tl_app.pipeline.context import Stage

RESULT_FILE = "trial.json"


def objective_value(run_dir, metric, config):
    """The validation `metric` of the run's final model, from its TensorBoard scalars.

    The last epoch's value; with early stopping that restored the best weights, the best value of the
    last phase (the weights the model ends with).
    """
    from tl_app.evaluate.summaries import read_epoch_scalars

    scalars = read_epoch_scalars(run_dir)
    series = scalars.get(f"validation/{metric}", {})
    if not series:
        raise ValueError(f"{run_dir}: no validation/{metric} was logged")
    phases = scalars.get("train/phase", {})
    last_phase = phases.get(max(phases)) if phases else None
    epochs = sorted(e for e in series if not phases or phases.get(e) == last_phase)
    if config.early_stopping_patience is not None and config.restore_best_weights:
        return max(series[e] for e in epochs) if metric != "loss" else min(series[e] for e in epochs)
    return series[epochs[-1]]


class TrialRecord(Stage):
    """The trial's score (`trial.json`) and its HParams record, after training."""

    name = "trial_record"

    def __init__(self, metric, values):
        self.metric = metric
        self.values = values

    def run(self, ctx):
        from tl_app.evaluate import summaries

        if not ctx.is_chief:
            return
        value = objective_value(ctx.run_dir, self.metric, ctx.config)
        ctx.metrics = {f"val_{self.metric}": value}
        summaries.write_hparams(ctx.run_dir, ctx.config_dict, os.path.basename(ctx.run_dir))
        with open(os.path.join(ctx.run_dir, RESULT_FILE), "w", encoding="utf-8") as f:
            json.dump({"values": self.values, f"val_{self.metric}": value, "seconds": ctx.seconds()}, f, indent=1)
        log.info(f"trial {os.path.basename(ctx.run_dir)}: val_{self.metric} {value:.4f}")


def trial_result(trials_dir, recipe_name, run_id):
    """What a finished trial run recorded (`trial.json`: values, score, seconds), or None when it has not finished."""
    path = os.path.join(trials_dir, recipe_name, run_id, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_trial(recipe, trials_dir, run_id, metric, values):
    """`{"val_<metric>": value, "seconds": s}` of a trial run (a finished one is read back, not run again)."""
    from tl_app.pipeline import RunOptions, run_recipe
    from tl_app.pipeline.finish import Finish
    from tl_app.pipeline.prepare import Prepare
    from tl_app.pipeline.train import Train

    done = trial_result(trials_dir, recipe.name, run_id)
    if done is not None:
        return done
    options = RunOptions(logdir=trials_dir, run_id=run_id, export=False, serving_check=False)
    run_recipe(recipe, options, stages=[Prepare(), Train(), TrialRecord(metric, values), Finish()])
    return trial_result(trials_dir, recipe.name, run_id)
