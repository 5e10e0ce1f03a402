"""What `tl-app select` and `tl-app tune` take as `tl-app run` does: RECIPE, --config, --data-dir, --set."""
import click


def recipe_options(function):
    """The options naming a recipe's config: --config FILE, --data-dir DIR, --set KEY=VALUE (repeatable)."""
    options = [
        click.option("--config", "config_path", metavar="FILE", help="A YAML/JSON file of config fields, as `tl-app run`."),
        click.option("--data-dir", type=str, help="Local data for the recipe (class folders, a CSV, ...)."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                     help="Override any config field, as `tl-app run` (image_size, weights, seed, ...)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def resolve_recipe(recipe, config_path, assignments, data_dir):
    """The Recipe (config resolved: defaults < --config < --set < --data-dir) those options name."""
    from tl_app.api import resolved_recipe

    return resolved_recipe(recipe, config_path, assignments, {"data_dir": data_dir})
