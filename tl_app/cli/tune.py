"""`tl-app tune`: search a recipe's hyperparameters with KerasTuner, every trial a run of the recipe's pipeline."""
import click

from tl_app.cli.group import cli
from tl_app.cli.recipe_args import recipe_options, resolve_recipe


@cli.command("tune")
@click.argument("recipe", required=False)
@recipe_options
@click.option("--trials", type=int, default=30, show_default=True, help="Trials of the head search.")
@click.option("--fine-tune-trials", type=int, default=8, show_default=True,
              help="Trials of the fine-tuning search that follows, the best head values fixed (0: none).")
@click.option("--budget-minutes", type=float, default=None, metavar="M",
              help="Start no trial after M minutes, nor one the time left cannot fit.")
@click.option("--tuner", default="bayesian", show_default=True, type=click.Choice(["bayesian", "hyperband", "random"]),
              help="KerasTuner's oracle (hyperband chooses each trial's epochs itself).")
@click.option("--search", "search_path", metavar="FILE",
              help="A YAML/JSON search space replacing the recipe's (docs/select.md): "
                   "`dropout: {type: Choice, values: [0.1, 0.3]}`.")
@click.option("--resume", is_flag=True, help="Continue the latest tuning of RECIPE (or --run-id's) where it stopped.")
@click.option("--logdir", default="runs", show_default=True, help="The tuning goes to <logdir>/<recipe>/tune-<run-id>/.")
@click.option("--run-id", default=None, help="Name after tune- (default: a timestamp).")
@click.option("--deterministic/--no-deterministic", default=True, show_default=True,
              help="Run trials with op determinism, so the same values score the same and best.yaml repeats the"
                   " best trial's figure (--no-deterministic: a GPU kernel lacks a deterministic implementation).")
@click.option("--then-run", is_flag=True, help="Then train, evaluate and export the best configuration (tl-app run).")
@click.option("--export-dir", default="saved_models", show_default=True, help="Where --then-run exports.")
def tune_command(recipe, config_path, data_dir, assignments, trials, fine_tune_trials, budget_minutes, tuner,
                 search_path, resume, logdir, run_id, deterministic, then_run, export_dir):
    """Search RECIPE's hyperparameters: the head first (on cached features), then fine-tuning.

    \b
    Every trial is a run of the recipe's own pipeline (no test split, no export),
    logged for TensorBoard's HParams dashboard: tensorboard --logdir <tune-dir>/trials.
    Each search tries first what `tl-app run` would train (its values), then the tuner's;
    when the best head is another, fine-tuning also scores the run's own configuration.
    Trials run with op determinism: the same values score the same.
    best.yaml keeps the run's own configuration unless the best trial beats it
    by more than one standard error of the validation figure.
    The result is <tune-dir>/best.yaml, a --config file for `tl-app run`, with
    trials.csv and result.json beside it. A killed tune continues with --resume.
    \b
    Example:
      tl-app tune text_folder --data-dir bbc/ --set preset=offline --trials 30 --fine-tune-trials 8
    """
    recipe_obj = resolve_recipe(recipe, config_path, assignments, data_dir)

    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from tl_app.select.tuning import tune

    result = tune(recipe_obj, trials, fine_tune_trials, budget_minutes, tuner, resume, search_path, logdir, run_id,
                  deterministic)
    best, choice = result["best"], result["choice"]
    if choice["kept_own"]:
        click.echo(f"best trial: {choice['best_trial']}, validation accuracy {choice['best_score']:.4f}, within one "
                   f"standard error ({choice['standard_error']:.4f} on {choice['validation_examples']} examples) of the "
                   "run's own configuration: best.yaml keeps it")
    click.echo(f"best: {best['stage']} trial {best['trial']}, validation accuracy {best['score']:.4f}: {best['values']}")
    click.echo(f"{result['trials']} trials, {result['trial_seconds']:.0f} s of trials ({result['trials_per_minute']:.1f}"
               f" a minute), {result['seconds']:.0f} s this session; tl-app run --config {result['best_yaml']}")
    if then_run:
        from tl_app import api
        from tl_app.pipeline import RunOptions, run_recipe

        best_config = api.load_config_file(result["best_yaml"])
        cls = api.recipe_class(None, best_config)
        run_recipe(cls(api.resolve_config(cls, best_config)), RunOptions(logdir=logdir, export_dir=export_dir))
