"""`tl-app list` and `tl-app config`: which recipes there are, and a recipe's config fields."""
import click

from tl_app.cli.group import cli


@cli.command("list")
@click.argument("recipe_files", nargs=-1, metavar="[RECIPE_FILE.py ...]")
def list_recipes(recipe_files):
    """List the recipes: name, where it comes from (built-in, package, file), what it does.

    RECIPE_FILE.py arguments add the recipes of those files to the list.
    """
    from tl_app import recipe_files as files
    from tl_app import registry

    for spec in recipe_files:
        files.load(spec)
    rows = [(name, str(registry.source(name)), registry.get(name).summary()) for name in registry.names()]
    w1, w2 = (max(len(row[i]) for row in rows) for i in (0, 1))
    for name, source, summary in rows:
        click.echo(f"{name.ljust(w1)}  {source.ljust(w2)}  {summary}")


@cli.command("config")
@click.argument("recipe", required=False)
@click.option("--config", "config_path", metavar="FILE", help="A YAML/JSON config file (as `tl-app run --config`).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
def show_config(recipe, config_path, assignments):
    """Show RECIPE's config fields: name, type and value (after any --config and --set)."""
    from tl_app import api
    from tl_app import config as config_lib

    loaded = api.load_config_file(config_path)
    recipe_cls = api.recipe_class(recipe, loaded)
    cfg = api.resolve_config(recipe_cls, loaded, assignments)
    rows = config_lib.describe_fields(cfg)
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    click.echo(f"{recipe_cls.name}: {recipe_cls.summary()}")
    for name, type_name, value in rows:
        click.echo(f"  {name.ljust(w1)}  {type_name.ljust(w2)}  {value!r}")
