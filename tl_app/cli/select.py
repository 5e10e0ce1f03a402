"""`tl-app select`: rank a recipe's candidate bases by probes on their frozen features, before any fine-tuning."""
import click

from tl_app.cli.group import cli
from tl_app.cli.recipe_args import recipe_options, resolve_recipe


@cli.command("select")
@click.argument("recipe", required=False)
@recipe_options
@click.option("--bases", default="offline", show_default=True, metavar="LIST",
              help="Candidates: 'offline' (weights prepared here), 'all', or names separated by commas.")
@click.option("--max-params", type=int, default=None, metavar="N",
              help="Drop bases whose whole model has more parameters than N.")
@click.option("--max-latency-ms", type=float, default=None, metavar="MS",
              help="Drop bases whose batch-1 call (p50, this machine) takes longer than MS milliseconds.")
@click.option("--logdir", default="runs", show_default=True,
              help="selection.json goes to <logdir>/<recipe>/select-<run-id>/ (where `tl-app run` logs).")
@click.option("--run-id", default=None, help="Name after select- (default: a timestamp).")
def select_command(recipe, config_path, data_dir, assignments, bases, max_params, max_latency_ms, logdir, run_id):
    """Rank RECIPE's candidate bases: a 5-fold linear probe and LogME on frozen features of train+validation.

    \b
    Each base's features are extracted once and kept in the feature store, so a
    later `select` or `tl-app run` on the same data and base reuses them. The test
    split is never read. The winner is the best probe accuracy (then LogME); train
    it with `tl-app run RECIPE --set base=WINNER`, or let `--set base=auto` choose.
    Bases within one fold spread of the winner are named: the probe does not
    tell them apart.
    \b
    Example:
      tl-app select image_folder --data-dir photos/ --set image_size=96 --bases offline
    """
    recipe_obj = resolve_recipe(recipe, config_path, assignments, data_dir)

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.select.choose import select, table, tie_line

    payload = select(recipe_obj, bases, logdir, run_id, max_params, max_latency_ms, recipe_obj.config.keep_features)
    for line in table(payload):
        click.echo(line)
    click.echo(f"winner: {payload['winner']}  ({payload['path']})")
    tied = tie_line(payload)
    if tied:
        click.echo(tied)
