"""One run of a recipe, end to end: data, model, phases, test metrics, export."""
import os
import time
from dataclasses import dataclass
from typing import Optional

from tl_app import config as config_lib
from tl_app import export, log, report, runs


@dataclass
class RunOptions:
    """Where a run writes; not part of the recipe config (it does not change the model)."""

    logdir: str = "runs"
    export_dir: str = "saved_models"
    export: bool = True
    run_id: Optional[str] = None
    strategy: str = "auto"


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


def run_recipe(recipe, options=None):
    """Train, evaluate and (optionally) export `recipe`; returns a RunResult."""
    import keras

    from tl_app.distribute import make_strategy
    from tl_app.train import Trainer, standard_callbacks

    options = options or RunOptions()
    cfg = recipe.config
    started = time.time()
    if options.export:
        export.check_export_dir(options.export_dir)  # before training: fail in seconds, not epochs
    strategy = make_strategy(options.strategy)
    keras.utils.set_random_seed(cfg.seed)
    data = recipe.load_data()  # before the run directory exists: bad data leaves nothing behind
    run_dir = runs.create_run_dir(options.logdir, recipe.name, options.run_id)
    config_dict = {"recipe": recipe.name, **config_lib.to_dict(cfg)}
    runs.write_json(run_dir, "config.json", config_dict)
    log.info(f"run {run_dir} (recipe {recipe.name}, seed {cfg.seed}, {strategy.num_replicas_in_sync} replica(s))")
    if cfg.mixed_precision:
        # Before any layer is built: layers read the global policy at construction.
        keras.mixed_precision.set_global_policy(f"mixed_{cfg.mixed_precision}")
        log.info(f"mixed precision: mixed_{cfg.mixed_precision}")
    sizes = ", ".join(f"{name} {_count(ds) if _count(ds) is not None else '?'}" for name, ds in
                      (("train", data.train), ("validation", data.validation), (data.test_split_name, data.test)))
    log.info(f"data: {sizes} examples, {len(data.class_names)} classes")
    for note in data.notes:
        log.info(note)

    with strategy.scope():
        model = recipe.build_model(data)
    trainer = Trainer(recipe, data, model, standard_callbacks(run_dir), strategy)
    trainer.run_all()

    metrics = trainer.evaluate(data.test)
    runs.write_json(run_dir, "metrics.json", metrics)
    print(report.metrics_table(metrics, data.test_split_name), flush=True)

    export_path = None
    if options.export:
        export_path = export.export_model(
            model,
            recipe.serving_signatures(model, data.class_names),
            os.path.join(options.export_dir, recipe.name),
            data.class_names,
            config_dict,
            metrics,
        )
        log.info(f"exported {export_path}")
    seconds = time.time() - started
    log.info(f"done in {seconds:.1f} s; TensorBoard: tensorboard --logdir {os.path.dirname(run_dir)}")
    return RunResult(run_dir=run_dir, metrics=metrics, export_path=export_path, seconds=seconds)
