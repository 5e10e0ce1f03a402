"""The `prepare` stage: checks, strategy and numerics, data, then the run directory.

Every check that needs no TensorFlow op comes first, so a mistake costs seconds
(and multi-worker collectives must be configured before TensorFlow starts).
The data is loaded before the run directory exists: bad data leaves nothing
behind. Each step is a function of the context that a test can call alone.
"""
import json
import os
import tempfile

from tl_app import atomic
from tl_app import config as config_lib
from tl_app import log
from tl_app.config_file import INIT_FROM_KEY, RESOLVED_KEY
from tl_app.errors import UserError
from tl_app.export import savedmodel
from tl_app.phase_fields import unused_fields
from tl_app.pipeline import run_dirs
from tl_app.pipeline.choose_base import check_auto_base, choose_base
from tl_app.pipeline.context import Stage
from tl_app.pipeline.tflite import check_tflite

SCRATCH_PREFIX = "tl-app-worker-"  # a non-chief worker's scratch directory, in the system's temporary directory


def check_config(recipe):
    """Raise UserError for any config value out of range or unknown; needs no TensorFlow op."""
    from tl_app.engine.optimizers import check_options
    from tl_app.engine.precision import choose_precision

    config_lib.check_values(recipe.config, recipe.metric_names())
    check_options(recipe.config)
    recipe.check_config()
    choose_precision(recipe.config.mixed_precision, "cpu", flags=())  # validates the value


def check_paths(options):
    """`--run-id` is a name, and the run and export directories are apart (exports need them only when exporting)."""
    run_dirs.check_run_id(options.run_id)
    if options.export:
        run_dirs.check_apart(options.logdir, options.export_dir)


def check_init_from(path, recipe):
    """The Keras weights file of export `path`; UserError when it is not a usable export of this recipe
    (another recipe, or another value of one of `recipe.architecture_fields`, e.g. another image base)."""
    if not os.path.isdir(path):
        raise UserError(f"--init-from {path}: no such export directory (expected saved_models/<name>/<version>).")
    weights = savedmodel.keras_weights_path(path)
    if not os.path.isfile(weights):
        raise UserError(f"--init-from {path}: no {savedmodel.ASSETS_EXTRA}/{savedmodel.KERAS_WEIGHTS} in it (exports "
                        "made before tl_app wrote Keras weights cannot seed a run); export again with this version.")
    config_path = os.path.join(path, savedmodel.ASSETS_EXTRA, "config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            exported = json.load(f)
        if exported.get("recipe") and exported["recipe"] != recipe.name:
            raise UserError(f"--init-from {path}: that export is of recipe '{exported['recipe']}', not '{recipe.name}'.")
        defaults = recipe.default_config()
        for field in recipe.architecture_fields:
            # An export written before the field existed used the field's default; `auto` (base=auto) what it chose.
            theirs, ours = exported.get(field, getattr(defaults, field)), getattr(recipe.config, field)
            if theirs == "auto":
                theirs = (exported.get(RESOLVED_KEY) or {}).get(field, theirs)
            if theirs != ours:
                raise UserError(f"--init-from {path}: that export was trained with {field}={theirs}, this run has"
                                f" {field}={ours}; add --set {field}={theirs}.")
    return weights


def check(ctx):
    """Config ranges, the export directory, `--init-from`, and which run (if any) this continues."""
    recipe, options = ctx.recipe, ctx.options
    check_config(recipe)
    check_paths(options)
    warnings, notes = unused_fields(recipe)
    for line in warnings:
        log.warn(line)
    for line in notes:
        log.info(line)
    if options.export:
        savedmodel.check_export_dir(options.export_dir)
        if not 0 <= options.warmup_examples <= 1000:  # TF Serving reads at most 1000 warmup records
            raise UserError(f"--warmup-examples {options.warmup_examples}: must be within 0..1000.")
    check_tflite(recipe.config, options.export)
    if options.init_from and (options.resume or options.run_id and os.path.isdir(
            run_dirs.run_path(options.logdir, recipe.name, options.run_id))):
        raise UserError("--init-from starts a new run; it cannot be combined with resuming one (--resume / existing --run-id).")
    ctx.init_weights = check_init_from(options.init_from, recipe) if options.init_from else None
    ctx.continuing = run_dirs.existing_run(options.logdir, recipe.name, options.run_id, options.resume)
    if ctx.continuing:
        run_dirs.check_same_config(ctx.continuing, ctx.config_dict)


def set_float_policy(ctx):
    """The float policy (`engine.precision`): after `load_data` (a text recipe's workload depends on the encoder it
    resolved), before any model is built (layers read the global policy when built). Logged with its reason;
    `auto`'s result is recorded in config.json."""
    from tl_app.engine.precision import apply_precision

    cfg = ctx.config
    ctx.precision = apply_precision(cfg.mixed_precision, ctx.choice.device, ctx.recipe.precision_workload)
    log.info(f"float policy: {ctx.precision.policy} ({ctx.precision.reason}; config mixed_precision="
             f"{cfg.mixed_precision}, device {ctx.choice.device})")


def choose_strategy(ctx):
    """The tf.distribute strategy (`--strategy`), then seeds (the float policy comes after the data)."""
    from tl_app.engine.strategies import choose_strategy as choose
    from tl_app.engine.strategies import configure_numerics

    import keras

    options = ctx.options
    ctx.choice = choose(options.strategy, options.tpu, collective_timeout=options.collective_timeout)
    # The float policy is Keras-global: a bfloat16 run must not leave the caller's later models in bfloat16.
    ctx.closing.callback(keras.mixed_precision.set_global_policy, keras.mixed_precision.global_policy())
    configure_numerics(ctx.config, ctx.choice)


def load_data(ctx):
    """The recipe's data, then the float policy (which may depend on what loading it resolved)."""
    ctx.data = ctx.recipe.load_data()
    set_float_policy(ctx)


def _exit_cleanly_on_sigterm():
    """Turn SIGTERM into SystemExit so `finally` blocks run (default SIGTERM ends Python without them)."""
    import signal
    import sys

    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    except ValueError:
        pass  # not the main thread: leave signals alone


def _count(dataset):
    import tensorflow as tf

    n = int(dataset.cardinality())
    return None if n in (int(tf.data.UNKNOWN_CARDINALITY), int(tf.data.INFINITE_CARDINALITY)) else n


def _record(ctx):
    """What repeats the run besides its fields: the export it started from, what its `auto` fields resolved to.

    A resumed run keeps what its start recorded (its weights come from the checkpoint, not from these).
    """
    saved = os.path.join(ctx.continuing, "config.json") if ctx.continuing else None
    if saved and os.path.isfile(saved):
        recorded = run_dirs.read_json(ctx.continuing, "config.json")
        return {key: recorded[key] for key in (INIT_FROM_KEY, RESOLVED_KEY) if key in recorded}
    record = {}
    if ctx.options.init_from:
        record[INIT_FROM_KEY] = os.path.abspath(ctx.options.init_from)
    resolved = {**ctx.auto_resolved, **ctx.recipe.resolved_config()}
    if ctx.config.mixed_precision == "auto":  # the float policy auto chose: --config repeats it on any host
        resolved["mixed_precision"] = ctx.precision.setting
    if resolved:
        record[RESOLVED_KEY] = resolved
    return record


def open_run_dir(ctx):
    """The run directory (new, or the one being continued) with config.json; a worker's scratch directory.

    In a multi-worker cluster only the chief writes the run; the other workers run the same code
    (collective ops need every worker) but write to a scratch directory removed at the end.
    """
    recipe, options, cfg, choice, data = ctx.recipe, ctx.options, ctx.config, ctx.choice, ctx.data
    if not choice.is_chief:
        atomic.remove_stale(tempfile.gettempdir(), SCRATCH_PREFIX)  # scratch of killed workers
        ctx.scratch = atomic.make_temp_dir(tempfile.gettempdir(), SCRATCH_PREFIX)
        _exit_cleanly_on_sigterm()  # `tl-app launch` stops workers with SIGTERM: remove the scratch directory
    if ctx.continuing:
        ctx.run_dir = ctx.continuing
        if choice.is_chief:  # what a killed run was writing when it died
            for folder in (ctx.run_dir, os.path.join(ctx.run_dir, "checkpoints")):
                atomic.remove_stale(folder)
    elif choice.is_chief:
        ctx.run_dir = ctx.created_run_dir = run_dirs.create_run_dir(options.logdir, recipe.name, options.run_id)
    ctx.config_dict["distribution"] = choice.to_dict(cfg.batch_size)
    ctx.config_dict.update(_record(ctx))
    if choice.is_chief:
        run_dirs.write_json(ctx.run_dir, "config.json", ctx.config_dict)
    log.info(f"run {ctx.run_dir or '(non-chief worker: writing to ' + ctx.scratch + ')'} "
             f"(recipe {recipe.name}, seed {cfg.seed})")
    log.info(choice.describe(cfg.batch_size))
    sizes = ", ".join(f"{name} {_count(ds) if _count(ds) is not None else '?'}" for name, ds in
                      (("train", data.train), ("validation", data.validation), (data.test_split_name, data.test)))
    classes = f", {len(data.class_names)} classes" if data.class_names else ""  # e.g. text_mlm: unlabeled text
    log.info(f"data: {sizes} examples{classes}")
    for note in data.notes:
        log.info(note)


class Prepare(Stage):
    """Checks, strategy and numerics, data, run directory (in that order)."""

    name = "prepare"

    def run(self, ctx):
        check_auto_base(ctx)
        check(ctx)
        choose_base(ctx)
        choose_strategy(ctx)
        load_data(ctx)
        for stage in ctx.stages:  # what later stages need from the data (a gate's metric names), before any run dir
            if stage.enabled(ctx):
                stage.check(ctx)
        open_run_dir(ctx)
