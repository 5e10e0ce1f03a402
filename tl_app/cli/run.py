"""`tl-app run` and `tl-app launch`: train a recipe here, or on N local worker processes."""
import click

from tl_app.cli.group import cli


def _run_options(function):
    """The options of `tl-app run` (shared with `tl-app launch`, which passes them on)."""
    options = [
        click.option("--config", "config_path", metavar="FILE",
                     help="A YAML/JSON file of config fields (the keys of --set; may name the recipe). A run's "
                          "saved config.json is one: `tl-app run --config runs/<recipe>/<run-id>/config.json` "
                          "repeats that run. --set and the flags below win over it."),
        click.option("--epochs", type=int, help="Epochs of training (the first phase; sets config 'epochs')."),
        click.option("--batch-size", type=int,
                     help="GLOBAL batch size, split evenly across replicas (sets config 'batch_size')."),
        click.option("--data-dir", type=str, help="Local data for the recipe (idx files, class folders, a CSV or text file, ...)."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                     help="Override any config field, type-checked (repeatable); see `tl-app config RECIPE`."),
        click.option("--export-dir", default="saved_models", show_default=True,
                     help="Base directory of exports: <export-dir>/<recipe>/<version>/ (text_mlm: <recipe>-encoder/<version>/)."),
        click.option("--logdir", default="runs", show_default=True,
                     help="TensorBoard logs go to <logdir>/<recipe>/<run-id>/ (never inside --export-dir, nor the reverse)."),
        click.option("--run-id", default=None,
                     help="Name of the run directory (default: a timestamp); a name, not a path. An unfinished run of "
                          "that name is resumed."),
        click.option("--resume", is_flag=True,
                     help="Continue the latest run of RECIPE in --logdir (or --run-id's) from its last checkpoint."),
        click.option("--init-from", type=str, default=None, metavar="EXPORT_DIR",
                     help="Start a new run from the weights of an export, e.g. saved_models/digits/3."),
        click.option("--seed", type=int, help="Random seed for splits, weights and shuffling (sets config 'seed')."),
        click.option("--no-export", is_flag=True,
                     help="Train and evaluate but write no export (SavedModel; text_mlm: encoder preset)."),
        click.option("--no-serving-check", is_flag=True,
                     help="Publish the export without first serving it in a fresh `tl-app serve` and comparing its "
                          "answers with the in-process model's."),
        click.option("--warmup-examples", type=click.IntRange(0, 1000), default=10, show_default=True,
                     help="Validation examples written into the export as TF Serving warmup requests."),
        click.option("--strategy", default="auto", show_default=True, metavar="NAME",
                     help="auto, one_device, mirrored, multi_worker or tpu (auto: TPU, TF_CONFIG cluster, >1 GPU, else one device)."),
        click.option("--tpu", default=None, help="TPU name or grpc:// address (default: TPU_NAME, Colab, or a TPU VM's own);"
                                                 " one that does not resolve is an error."),
        click.option("--loop", default="auto", show_default=True, type=click.Choice(["auto", "fit", "custom"]),
                     help="Keras fit, or the custom strategy.run loop (auto: custom under multi_worker only)."),
        click.option("--gate", default=None, metavar="CONDITIONS",
                     help="Publish only if the test metrics meet these conditions, e.g. \"accuracy>=0.9,f1_macro>=0.85\""
                          " or relative to the newest published version: \"accuracy>=published-0.005\". A run that "
                          "misses it exports nothing, keeps its model in <run>/rejected/ and exits with code 3."),
        click.option("--gate-retries", type=int, default=0, show_default=True, metavar="N",
                     help="When the gate is missed, fine-tune up to N more rounds (the last phase again, at half the "
                          "learning rate each round) before giving up."),
        click.option("--worker-timeout", type=float, default=None, metavar="SECONDS",
                     help="multi_worker: fail a collective that waits longer than this on a dead peer "
                          "(default: TensorFlow's health check, about a minute)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _recipe(recipe, p):
    """`(Recipe, config file)`: the recipe (class and config resolved) that `tl-app run RECIPE` with parameters `p`
    names, and its `--config` file (or None)."""
    from tl_app import api
    from tl_app.engine.strategies import STRATEGIES
    from tl_app.errors import UserError

    if p["strategy"] not in STRATEGIES:
        raise UserError(f"unknown strategy '{p['strategy']}'; choose one of {', '.join(STRATEGIES)}.")
    if p["gate"] is not None:
        from tl_app.evaluate.gate import parse

        parse(p["gate"])  # syntax now; the metric names once the data says which classes there are
    if p["gate_retries"] < 0 or (p["gate_retries"] and p["gate"] is None):
        raise UserError(f"--gate-retries {p['gate_retries']}: give a number of rounds (0 or more) together with --gate.")
    loaded = api.load_config_file(p["config_path"])
    recipe_cls = api.recipe_class(recipe, loaded)
    flags = {"epochs": p["epochs"], "batch_size": p["batch_size"], "data_dir": p["data_dir"], "seed": p["seed"]}
    return recipe_cls(api.resolve_config(recipe_cls, loaded, p["assignments"], flags)), loaded


@cli.command("run")
@click.argument("recipe", required=False)
@_run_options
def run(recipe, **p):
    """Train RECIPE, evaluate it on the test split (metrics, report.md) and export a new SavedModel version.

    \b
    RECIPE is a name from `tl-app list`, or a Python file of your own:
    path/to/my_recipe.py (its one Recipe subclass) or path/to/my_recipe.py:ClassName.
    It may be left out when --config names the recipe.
    A killed run continues with the same command plus --resume (or --run-id ID):
    training restarts after the last completed epoch of the right phase.
    """
    recipe_obj, loaded = _recipe(recipe, p)

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.api import options_with_file
    from tl_app.pipeline import run_recipe

    run_recipe(recipe_obj, options_with_file(_options(p), loaded, recipe_obj.name))


def _options(p):
    """The RunOptions that `tl-app run` parameters `p` give."""
    from tl_app.pipeline import RunOptions

    options = RunOptions(logdir=p["logdir"], export_dir=p["export_dir"], export=not p["no_export"],
                         run_id=p["run_id"], strategy=p["strategy"], tpu=p["tpu"], resume=p["resume"],
                         init_from=p["init_from"], loop=p["loop"], collective_timeout=p["worker_timeout"],
                         warmup_examples=p["warmup_examples"], gate=p["gate"], gate_retries=p["gate_retries"])
    if p["no_serving_check"]:
        options.serving_check = False
    return options


@cli.command("launch", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--workers", type=int, required=True, help="How many local worker processes.")
@click.argument("recipe")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def launch_command(workers, recipe, run_args):
    """Train RECIPE on N local worker processes (MultiWorkerMirroredStrategy on 127.0.0.1).

    \b
    RUN_ARGS are `tl-app run` options (--epochs, --set, --resume, ...). Each worker
    gets a TF_CONFIG naming all of them; worker 0 is the chief and writes the run
    and the export. If a worker dies the others are stopped and the launch fails;
    repeat the command with --resume to continue from the last checkpoint.
    For a real cluster set TF_CONFIG on each machine instead (docs/distributed.md).
    """
    from tl_app.engine.launch import launch
    from tl_app.pipeline import run_dirs
    from tl_app.pipeline.prepare import check_config, check_paths

    with run.make_context("tl-app run", [recipe, *run_args]) as ctx:
        check_config(_recipe(recipe, ctx.params)[0])  # a mistake fails here once, not in every worker
        check_paths(_options(ctx.params))
    args = list(run_args)
    if "--run-id" not in args and not any(a.startswith("--run-id=") for a in args) and "--resume" not in args:
        args += ["--run-id", run_dirs.new_run_id()]  # one id for all workers, named in the logs
    launch(workers, [recipe, *args])
