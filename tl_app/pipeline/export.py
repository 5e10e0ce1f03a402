"""The `export` stage: a new SavedModel version of the trained model (skipped with `--no-export`).

Before the version is published the chief adds TF Serving's warmup requests (real validation
examples, `tl_app.export.warmup`) and runs `ctx.before_publish` (the serving check); after it,
`saved_models/models.config` is rewritten for the models now there (`tl_app.export.models_config`).
"""
import json
import os

from tl_app import log
from tl_app.errors import UserError
from tl_app.export import models_config, savedmodel, warmup
from tl_app.pipeline.context import Stage


def warmup_inputs(ctx, limit):
    """The `serving_default` inputs of up to `limit` validation examples (name -> batch), or None without any."""
    batches = ctx.data.validation.batch(limit).take(1)
    for inputs, _labels in batches.as_numpy_iterator():
        return ctx.recipe.serving_examples(inputs)
    return None


def write_warmup(ctx, export_dir):
    """`assets.extra/tf_serving_warmup_requests` from validation examples (TF Serving replays it at load)."""
    limit = ctx.options.warmup_examples
    if limit == 0:
        return
    inputs = warmup_inputs(ctx, limit)
    if inputs is None:
        log.warn("no validation examples: the export has no warmup requests")
        return
    warmup.write_warmup_file(export_dir, inputs, model_name=ctx.recipe.name, limit=limit)


def multi_label_thresholds(ctx):
    """`thresholds.json`'s record of a multi-label run (from its evaluation, else its run directory), or None."""
    from tl_app.evaluate.thresholds import THRESHOLDS_FILE, thresholds_record

    if ctx.data.label_mode != "multi_label":
        return None
    evaluation = ctx.evaluation
    if getattr(evaluation, "thresholds", None) is not None:
        fixed = ctx.config.fixed_threshold is not None
        return thresholds_record(ctx.data.class_names, evaluation.thresholds, ctx.config.threshold_floor,
                                 split=None if fixed else "validation")
    path = os.path.join(ctx.run_dir or "", THRESHOLDS_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{path}: missing; a multi_label export needs the per-label thresholds its run chose on"
                        " validation (run it again).")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def export_signatures(ctx):
    """The recipe's signatures of the trained model; a multi-label run's return `predicted` by its thresholds."""
    from tl_app.export import signatures

    found = ctx.recipe.serving_signatures(ctx.model, ctx.data.class_names)
    record = multi_label_thresholds(ctx)
    return found if record is None else signatures.with_thresholds(found, record["thresholds"])


def write_model(ctx, model_dir, metrics, before_publish=(), run_dir=None):
    """A complete SavedModel version of the trained model under `model_dir` (serving signatures, labels,
    config, `metrics`, Keras weights); returns its path. Also how the gate keeps a rejected model.

    Args:
        before_publish: callables run on the complete export before it takes a version (warmup, serving check).
        run_dir: the run that made it, recorded in the export (a resumed run finds its own export by it).
    """
    recipe, data = ctx.recipe, ctx.data
    extra_files = dict(recipe.export_files(ctx.model))
    record = multi_label_thresholds(ctx)
    if record is not None:
        from tl_app.evaluate.thresholds import THRESHOLDS_FILE

        extra_files[THRESHOLDS_FILE] = json.dumps(record, indent=2)
    # Looked up on the module at run time, so a test can wrap it.
    return savedmodel.export_model(ctx.model, export_signatures(ctx), model_dir,
                                   data.class_names, ctx.config_dict, metrics, keras_weights=True,
                                   before_publish=before_publish, run_dir=run_dir, extra_files=extra_files)


class Export(Stage):
    """Every worker exports (reading distributed variables may need all of them); only the chief's is kept."""

    name = "export"

    def enabled(self, ctx):
        return ctx.options.export

    def run(self, ctx):
        recipe = ctx.recipe
        model_dir = os.path.join(ctx.options.export_dir, recipe.name)
        # Killed after its export was renamed into place but before it was marked complete: that export
        # is this run's (every worker decides alike: they read the same shared export directory).
        made = savedmodel.export_of_run(model_dir, ctx.continuing) if ctx.continuing else None
        if made:
            savedmodel.remove_stale_exports(model_dir)
            if ctx.is_chief:
                log.info(f"exported {made} before the restart; not exporting it again")
                self._published(ctx, made)
            return
        base = ctx.options.export_dir if ctx.is_chief else os.path.join(ctx.scratch, "export")
        hooks = [lambda tmp: write_warmup(ctx, tmp), *ctx.before_publish] if ctx.is_chief else []
        metrics = {**ctx.metrics, "gate": ctx.gate} if ctx.gate else ctx.metrics  # a passed gate's decision
        path = write_model(ctx, os.path.join(base, recipe.name), metrics, before_publish=hooks,
                           run_dir=ctx.run_dir if ctx.is_chief else None)
        if ctx.is_chief:
            log.info(f"exported {path}")
            self._published(ctx, path)

    @staticmethod
    def _published(ctx, path):
        """The chief's export is the run's; models.config names the models now there."""
        ctx.export_path = path
        base = ctx.options.export_dir
        try:
            models_config.update(base)
        except UserError as exc:  # a hand-edited file that no longer parses: left alone, the export stands
            log.warn(f"{exc} Left as it is: fix it, then `tl-app models-config {base}` rewrites it.")
