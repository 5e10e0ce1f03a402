"""One run of a recipe, end to end: strategy, data, model, phases, test metrics, export.

A run lives in `runs/<recipe>/<run-id>/`: TensorBoard logs (train/, validation/),
`config.json` (the resolved config plus the strategy it trained under),
`checkpoints/` (one per epoch, for `--resume`), `metrics.json`, and
`complete.json` once training, evaluation and export are done.

In a multi-worker cluster only the chief writes there and exports; the other
workers run the same code (collective ops need every worker) but write to a
temporary directory that is removed at the end.
"""
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

from tl_app import config as config_lib
from tl_app import export, log, report, runs
from tl_app.errors import UserError


@dataclass
class RunOptions:
    """Where and how a run trains; not part of the recipe config (it does not change the model).

    Args:
        logdir: base of run directories (`<logdir>/<recipe>/<run-id>/`).
        export_dir: base of exports (`<export_dir>/<recipe>/<version>/`).
        export: whether to export at the end.
        run_id: name of the run directory; an existing, unfinished run of that name is continued.
        strategy: one of `tl_app.distribute.STRATEGIES`.
        tpu: TPU name or address for the `tpu` / `auto` strategies.
        resume: continue the latest run of the recipe (or `run_id`'s) from its last checkpoint.
        init_from: an export directory (`saved_models/<name>/<version>`) whose weights start the model.
        loop: `auto`, `fit` or `custom` (see `tl_app.train.Trainer`).
        collective_timeout: seconds before a multi-worker collective waiting on a dead peer fails.
    """

    logdir: str = "runs"
    export_dir: str = "saved_models"
    export: bool = True
    run_id: Optional[str] = None
    strategy: str = "auto"
    tpu: Optional[str] = None
    resume: bool = False
    init_from: Optional[str] = None
    loop: str = "auto"
    collective_timeout: Optional[float] = None


@dataclass
class RunResult:
    run_dir: str
    metrics: dict
    export_path: Optional[str]
    seconds: float


def _count(dataset):
    import tensorflow as tf

    n = int(dataset.cardinality())
    return None if n in (int(tf.data.UNKNOWN_CARDINALITY), int(tf.data.INFINITE_CARDINALITY)) else n


def check_init_from(path, recipe_name):
    """The Keras weights file of export `path`; UserError when it is not a usable export of this recipe."""
    if not os.path.isdir(path):
        raise UserError(f"--init-from {path}: no such export directory (expected saved_models/<name>/<version>).")
    weights = export.keras_weights_path(path)
    if not os.path.isfile(weights):
        raise UserError(f"--init-from {path}: no {export.ASSETS_EXTRA}/{export.KERAS_WEIGHTS} in it (exports made "
                        "before tl_app wrote Keras weights cannot seed a run); export again with this version.")
    config_path = os.path.join(path, export.ASSETS_EXTRA, "config.json")
    if os.path.isfile(config_path):
        import json

        with open(config_path, encoding="utf-8") as f:
            exported_recipe = json.load(f).get("recipe")
        if exported_recipe and exported_recipe != recipe_name:
            raise UserError(f"--init-from {path}: that export is of recipe '{exported_recipe}', not '{recipe_name}'.")
    return weights


def _load_init_weights(model, weights, path):
    try:
        model.load_weights(weights)
    except ValueError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:2] if line.strip())
        raise UserError(f"--init-from {path}: its weights do not fit this model ({detail}); "
                        "use the config the export was made with.") from None


def _configure_numerics(cfg, choice):
    """Float policy and seeds; after the strategy exists (multi-worker needs TF untouched until then)."""
    import keras
    import tensorflow as tf

    from tl_app.distribute import mixed_precision_policy

    keras.backend.clear_session(free_memory=False)  # same layer names every run: --init-from matches by name
    policy = mixed_precision_policy(cfg.mixed_precision, choice.device)
    # Before any layer is built: layers read the global policy at construction.
    keras.mixed_precision.set_global_policy(policy or "float32")
    if policy:
        log.info(f"mixed precision: {policy} (config mixed_precision={cfg.mixed_precision}, device {choice.device})")
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()


def _exit_cleanly_on_sigterm():
    """Turn SIGTERM into SystemExit so `finally` blocks run (default SIGTERM ends Python without them)."""
    import signal
    import sys

    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    except ValueError:
        pass  # not the main thread: leave signals alone


def check_config(recipe):
    """Raise UserError for any config value out of range or unknown; needs no TensorFlow op."""
    from tl_app.distribute import mixed_precision_policy
    from tl_app.optim import check_options

    config_lib.check_values(recipe.config, recipe.metric_names())
    check_options(recipe.config)
    mixed_precision_policy(recipe.config.mixed_precision, "cpu")  # validates the value


def run_recipe(recipe, options=None):
    """Train, evaluate and (optionally) export `recipe`; returns a RunResult.

    Args:
        recipe: a `Recipe` with its resolved config.
        options: `RunOptions` (defaults: runs/, saved_models/, export, auto strategy).
    """
    from tl_app.checkpoint import CheckpointStore
    from tl_app.distribute import choose_strategy
    from tl_app.train import Trainer, standard_callbacks

    options = options or RunOptions()
    cfg = recipe.config
    started = time.time()
    # Every check that needs no TensorFlow op comes first: a mistake costs seconds, and
    # multi-worker collectives must be configured before TensorFlow initialises.
    check_config(recipe)
    if options.export:
        export.check_export_dir(options.export_dir)
    if options.init_from and (options.resume or options.run_id and os.path.isdir(
            runs.run_path(options.logdir, recipe.name, options.run_id))):
        raise UserError("--init-from starts a new run; it cannot be combined with resuming one (--resume / existing --run-id).")
    init_weights = check_init_from(options.init_from, recipe.name) if options.init_from else None
    config_dict = {"recipe": recipe.name, **config_lib.to_dict(cfg)}
    continuing = runs.existing_run(options.logdir, recipe.name, options.run_id, options.resume)
    if continuing:
        runs.check_same_config(continuing, config_dict)

    choice = choose_strategy(options.strategy, options.tpu, collective_timeout=options.collective_timeout)
    _configure_numerics(cfg, choice)
    data = recipe.load_data()  # before the run directory exists: bad data leaves nothing behind

    # The chief writes the run; other workers write to a scratch directory removed at the end.
    scratch = None if choice.is_chief else tempfile.mkdtemp(prefix="tl-app-worker-")
    if scratch:
        _exit_cleanly_on_sigterm()  # `tl-app launch` stops workers with SIGTERM: remove the scratch directory
    if continuing:
        run_dir = continuing
    elif choice.is_chief:
        run_dir = runs.create_run_dir(options.logdir, recipe.name, options.run_id)
    else:
        run_dir = None
    created = run_dir if choice.is_chief and not continuing else None
    with runs.removed_if_it_fails_before_a_checkpoint(created):
        write_dir = run_dir if choice.is_chief else scratch
        config_dict["distribution"] = choice.to_dict(cfg.batch_size)
        if choice.is_chief:
            runs.write_json(run_dir, "config.json", config_dict)
        log.info(f"run {run_dir or '(non-chief worker: writing to ' + scratch + ')'} "
                 f"(recipe {recipe.name}, seed {cfg.seed})")
        log.info(choice.describe(cfg.batch_size))
        sizes = ", ".join(f"{name} {_count(ds) if _count(ds) is not None else '?'}" for name, ds in
                          (("train", data.train), ("validation", data.validation), (data.test_split_name, data.test)))
        log.info(f"data: {sizes} examples, {len(data.class_names)} classes")
        for note in data.notes:
            log.info(note)

        resume_from = CheckpointStore(os.path.join(continuing, "checkpoints")).load() if continuing else None
        with choice.strategy.scope():
            model = recipe.build_model(data)
        if init_weights:
            _load_init_weights(model, init_weights, options.init_from)
            log.info(f"initial weights from the export {options.init_from}")
        if resume_from is not None:
            s = resume_from.state
            log.info(f"resuming {run_dir} from {os.path.basename(resume_from.path)}: phase {s.phase + 1}, "
                     f"{s.phase_epochs_done} of its epochs done, {s.epoch} epoch(s) in all")
        elif continuing:
            log.info(f"continuing {run_dir}: it has no checkpoint yet, training from the start")
        trainer = Trainer(recipe, data, model, standard_callbacks(write_dir), choice.strategy,
                          checkpoints=CheckpointStore(os.path.join(write_dir, "checkpoints")),
                          resume=resume_from, loop=options.loop)
        try:
            trainer.run_all()
            metrics = trainer.evaluate(data.test)
            export_path = None
            if choice.is_chief:
                runs.write_json(run_dir, "metrics.json", metrics)
                print(report.metrics_table(metrics, data.test_split_name), flush=True)
            if options.export:
                # Every worker exports (reading distributed variables may need all of them); only the chief's is kept.
                base = options.export_dir if choice.is_chief else os.path.join(scratch, "export")
                export_path = export.export_model(
                    model,
                    recipe.serving_signatures(model, data.class_names),
                    os.path.join(base, recipe.name),
                    data.class_names,
                    config_dict,
                    metrics,
                    keras_weights=True,
                )
                if choice.is_chief:
                    log.info(f"exported {export_path}")
                else:
                    export_path = None
            seconds = time.time() - started
            if choice.is_chief:
                runs.mark_complete(run_dir, {"metrics": metrics, "export": export_path, "epochs": trainer.epoch})
                log.info(f"done in {seconds:.1f} s; TensorBoard: tensorboard --logdir {os.path.dirname(run_dir)}")
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
    return RunResult(run_dir=run_dir, metrics=metrics, export_path=export_path, seconds=seconds)
