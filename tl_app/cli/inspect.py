"""`tl-app inspect RECIPE`: likely label errors, duplicates, leaks and outliers of a recipe's data, without training."""
import click

from tl_app.cli.group import cli


@cli.command("inspect")
@click.argument("recipe", required=False)
@click.option("--config", "config_path", metavar="FILE", help="A run.yaml/json or a run's config.json (as `tl-app run`).")
@click.option("--data-dir", type=str, help="The data to inspect (class folders, a CSV or text folder, ...).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a config field (repeatable), e.g. --set inspect_folds=5 --set image_size=96.")
@click.option("--batch-size", type=int, help="Batch size of feature extraction.")
@click.option("--logdir", default="runs", show_default=True,
              help="Findings go to <logdir>/<recipe>/inspect-<timestamp>/.")
@click.option("--write-list", default=None, metavar="FILE",
              help="Also write the findings to FILE (a new file) for a person to review.")
def inspect_command(recipe, config_path, data_dir, assignments, batch_size, logdir, write_list):
    """Inspect RECIPE's data without training: data_issues.csv, report.md (and data_issues.png for pictures).

    \b
    The frozen base's features (extracted once, or reused from an earlier run's
    feature store) give likely label errors (confident learning on a k-fold probe's
    out-of-fold probabilities), exact and near duplicates, train/test leaks and
    outliers. Nothing moves, renames or deletes an input file. docs/inspect.md.
    """
    from tl_app import api
    from tl_app.inspect.standalone import check_list_path

    check_list_path(write_list)
    loaded = api.load_config_file(config_path)
    recipe_cls = api.recipe_class(recipe, loaded)
    config = api.resolve_config(recipe_cls, loaded, assignments, {"data_dir": data_dir, "batch_size": batch_size})
    recipe_obj = recipe_cls(config)

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.inspect.standalone import inspect_recipe
    from tl_app.run_paths import create_run_dir, new_run_id

    out = create_run_dir(logdir, recipe_obj.name, "inspect-" + new_run_id())
    try:
        inspection = inspect_recipe(recipe_obj, out, write_list)
    except BaseException:
        import shutil

        shutil.rmtree(out, ignore_errors=True)  # nothing half-written is left behind
        raise
    counts = ", ".join(f"{name} {n}" for name, n in inspection.counts.items())
    click.echo(f"{counts}\nfindings: {out}/data_issues.csv; report: {out}/report.md")
