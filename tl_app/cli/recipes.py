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
    """Show RECIPE's config fields: name, type, value (after any --config and --set) and the training phases each drives.

    \b
    A field drives the phases named beside it (text recipes: the head phase reads
    optimizer, weight_decay, ...; the fine-tune phase reads fine_tune_optimizer, ...).
    A phase whose epochs field is 0 is skipped; a run warns about a field it sets that
    no phase of the run reads.
    """
    from tl_app import api
    from tl_app import config as config_lib
    from tl_app.phase_fields import field_phases

    loaded = api.load_config_file(config_path)
    recipe_cls = api.recipe_class(recipe, loaded)
    cfg = api.resolve_config(recipe_cls, loaded, assignments)
    plan = recipe_cls(cfg).phase_fields()
    phases_of = field_phases(plan)
    rows = [(*row, ", ".join(phases_of.get(row[0], []))) for row in config_lib.describe_fields(cfg)]
    widths = [max(len(str(r[i])) for r in rows) for i in (0, 1)]
    values = [repr(r[2]) for r in rows]
    w3 = max(len(v) for v in values)
    click.echo(f"{recipe_cls.name}: {recipe_cls.summary()}")
    shown = ", ".join(f"{p.name} ({p.epochs}={getattr(cfg, p.epochs)}{'' if p.runs(cfg) else ': skipped'})"
                      for p in plan)
    click.echo(f"phases: {shown}")
    for (name, type_name, _, phases), value in zip(rows, values):
        line = f"  {name.ljust(widths[0])}  {type_name.ljust(widths[1])}  {value.ljust(w3)}  {phases}"
        click.echo(line.rstrip())
