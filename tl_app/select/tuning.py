"""`tl-app tune`: KerasTuner chooses the values, the recipe's own pipeline trains every trial.

Two searches, as the fine-tuning practice has it: the head's fields first (`--trials`; head-only
runs, which train on the frozen base's cached features, seconds each), then, with the best head
values fixed except the head's epochs, the fine-tuning fields (`--fine-tune-trials`; full runs). The
head's epochs are searched again there: they are the warm-up before fine-tuning, and the head that
scores best alone is often one trained too long to start fine-tuning from. Each search starts from the
run's own values; when the best head is not the run's own, the run's own configuration is scored whole
as the fine-tuning trial `own`, so a tune never ends below it on validation. The trials of a tune run
in one process and decode the data once (`tl_app.data.reuse`). Each search is a KerasTuner
project in the tuning directory `<logdir>/<recipe>/tune-<run-id>/` (oracle state and trial files),
so a killed `tune` continues with `--resume`: finished trials are kept, the one that was running is
run again from its last checkpoint. Trials run with TensorFlow's op determinism unless told otherwise
(`deterministic: true` in each trial's config and in best.yaml): a trial's score is then a function of
its values and the seed, so the search compares configurations, not the luck of one run's thread
order, and `tl-app run --config best.yaml` repeats the best trial's figure. KerasTuner silently keeps
a saved search space that differs from the new one (keras-tuner #149, #803); `--resume` compares
them first and says what differs.

The result: `best.yaml` (a `--config` file for `tl-app run`: the best trial, or the run's own configuration
when the best beats it by no more than one standard error, `tl_app.select.best_trial`), `trials.csv` (every
trial, its values, score and seconds) and `result.json` (the chosen trial, what the choice rests on, the wall
time).
"""
import csv
import json
import os
import time

from tl_app import config as config_lib
from tl_app import log, run_paths
from tl_app.data import reuse
from tl_app.errors import UserError
from tl_app.select import best_trial
from tl_app.select import search_space as spaces
from tl_app.select.trial import run_trial, trial_result

TUNE_PREFIX = "tune-"
TUNERS = ("bayesian", "hyperband", "random")
SEARCH_FILE = "search.json"
METRIC = "accuracy"  # the trials' score: validation accuracy of the final model
EPOCH_FIELDS = {spaces.HEAD: "epochs", spaces.FINE_TUNE: "fine_tune_epochs"}  # what Hyperband's budget sets
# search.json's `format`: what a saved search means beyond its space, and what changed at each format (a saved
# oracle of another format has other hyperparameters than this tl_app would resume it with).
SEARCH_FORMAT = 3
FORMAT_CHANGES = {2: "the fine-tuning search also searches the head's epochs",
                  3: "trials run with op determinism unless --no-deterministic, and the run's own configuration is"
                     " a fine-tuning trial"}


def _budget_oracle(cls):
    """`cls` (a KerasTuner oracle class) that starts no trial past the deadline, nor one the time left cannot fit."""
    import keras_tuner

    class Budgeted(cls):
        deadline = None  # set per search, with trial_seconds (the finished trials' durations)
        trial_seconds = ()
        start = None  # values tried before any other: what `tl-app run` trains with (None: start at random)

        def _random_values(self):
            # Each oracle (random, Bayesian's first points, Hyperband's new candidates) draws new values here; the
            # starting values come first, once, resumed searches included (a trial holding them is not repeated).
            if self.start is not None and not any(_searched(t.hyperparameters.values) == self.start
                                                  for t in self.trials.values()):
                return dict(self.start)
            return super()._random_values()

        def populate_space(self, trial_id):
            if self.deadline is not None:
                left = self.deadline - time.time()
                shortest = min(self.trial_seconds) if self.trial_seconds else 0.0
                if left <= 0 or left < shortest:
                    log.info(f"tune: the budget has {max(left, 0):.0f} s left, less than a trial takes"
                             f" ({shortest:.0f} s at best): no more trials")
                    return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED}
            return super().populate_space(trial_id)

    Budgeted.__name__ = cls.__name__
    return Budgeted


def _searched(values):
    """A trial's values without KerasTuner's own (`tuner/epochs`, ...)."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def _oracle(kind, hp, trials, seed, epochs_spec):
    import keras_tuner

    objective = keras_tuner.Objective(f"val_{METRIC}", "max")
    common = dict(objective=objective, hyperparameters=hp, seed=seed, tune_new_entries=False,
                  allow_new_entries=False)
    if kind == "hyperband":
        # The most epochs a trial may get: the spec's largest value, or the config's when the space fixes them.
        if isinstance(epochs_spec, dict):
            top = max(epochs_spec["values"]) if "values" in epochs_spec else epochs_spec["max_value"]
        else:
            top = epochs_spec
        oracle = _budget_oracle(keras_tuner.oracles.HyperbandOracle)(max_epochs=int(top), factor=3, **common)
        oracle.max_trials = trials
        return oracle
    if kind == "bayesian":
        return _budget_oracle(keras_tuner.oracles.BayesianOptimizationOracle)(max_trials=trials, **common)
    return _budget_oracle(keras_tuner.oracles.RandomSearchOracle)(max_trials=trials, **common)


def _tuner(oracle, directory, stage, run):
    """A KerasTuner BaseTuner whose trials are `run(values, trial_id)`; a UserError stops the search."""
    import keras_tuner

    class PipelineTuner(keras_tuner.engine.base_tuner.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            try:
                return run(dict(trial.hyperparameters.values), trial.trial_id)
            except UserError as exc:
                raise keras_tuner.errors.FatalError(str(exc)) from exc

    return PipelineTuner(oracle, directory=directory, project_name=stage, overwrite=False)


def _tune_dir(recipe, logdir, run_id, resume):
    """The tuning directory: new, or (`--resume`) the named or latest one."""
    base = os.path.join(logdir, recipe.name)
    if resume:
        if run_id:
            path = os.path.join(base, TUNE_PREFIX + run_id)
        else:
            found = [os.path.join(base, n) for n in os.listdir(base)] if os.path.isdir(base) else []
            found = [p for p in found if os.path.basename(p).startswith(TUNE_PREFIX)
                     and os.path.isfile(os.path.join(p, SEARCH_FILE))]
            path = max(found, key=os.path.getmtime) if found else None
        if not path or not os.path.isfile(os.path.join(path, SEARCH_FILE)):
            raise UserError(f"--resume: no tuning of {recipe.name} under {base}"
                            f"{' named ' + TUNE_PREFIX + run_id if run_id else ''} to resume; start one without --resume.")
        return path
    return run_paths.create_run_dir(logdir, recipe.name, TUNE_PREFIX + (run_id or run_paths.new_run_id()))


def _check_same_search(tune_dir, search):
    with open(os.path.join(tune_dir, SEARCH_FILE), encoding="utf-8") as f:
        saved = json.load(f)
    older, newer = sorted((saved.get("format", 1), search["format"]))
    if older != newer:
        changes = "; ".join(f"{n}: {FORMAT_CHANGES.get(n, 'unknown to this tl_app')}" for n in range(older + 1, newer + 1))
        raise UserError(f"--resume {tune_dir}: this tuning was started by a tl_app whose searches differ from this "
                        f"one's (search format {saved.get('format', 1)}, now {search['format']}; {changes}); start a "
                        "new tuning without --resume.")
    differ = sorted(k for k in set(saved) | set(search) if saved.get(k) != search.get(k))
    if differ:
        shown = "; ".join(f"{k}: saved {json.dumps(saved.get(k), sort_keys=True)[:80]}, now "
                          f"{json.dumps(search.get(k), sort_keys=True)[:80]}" for k in differ[:3])
        raise UserError(f"--resume {tune_dir}: the search differs from the saved one ({shown}); run it with the saved"
                        " settings, or start a new tuning without --resume.")


def _trial_values(values, stage, fixed):
    """Config values of a trial: the fixed ones, then the tuner's (its `tuner/epochs` as the stage's epochs)."""
    out = {**fixed, **_searched(values)}
    if "tuner/epochs" in values:
        out[EPOCH_FIELDS[stage]] = int(values["tuner/epochs"])
    return out


def _write_results(tune_dir, recipe, user_values, best, rows, started, choice):
    import yaml

    with open(os.path.join(tune_dir, "trials.csv"), "w", newline="", encoding="utf-8") as f:
        fields = sorted({k for row in rows for k in row["values"]})
        writer = csv.writer(f)
        writer.writerow(["stage", "trial", *fields, f"val_{METRIC}", "seconds", "status"])
        for row in rows:
            writer.writerow([row["stage"], row["trial"], *[row["values"].get(k, "") for k in fields],
                             row["score"], row["seconds"], row["status"]])
    best_config = {"recipe": recipe.name, **user_values, **best["values"]}
    with open(os.path.join(tune_dir, "best.yaml"), "w", encoding="utf-8") as f:
        kept = (f"; the run's own configuration, kept: the best, {choice['best_trial']} ({choice['best_score']:.4f}),"
                f" is within one standard error" if choice["kept_own"] else "")
        f.write(f"# tl-app tune's best trial ({best['stage']} {best['trial']}: val_{METRIC} {best['score']:.4f}{kept});"
                f" repeat it with `tl-app run --config {os.path.join(tune_dir, 'best.yaml')}`\n")
        yaml.safe_dump(best_config, f, sort_keys=False)
    trial_seconds = sum(row["seconds"] for row in rows)  # across resumed sessions too
    result = {"best": best, "choice": choice, "trials": len(rows), "seconds": round(time.time() - started, 1),
              "trial_seconds": round(trial_seconds, 1),
              "trials_per_minute": round(len(rows) / max(trial_seconds / 60, 1e-9), 2),
              "best_yaml": os.path.join(tune_dir, "best.yaml")}
    with open(os.path.join(tune_dir, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return result


def _start(recipe, stage, hp, fixed):
    """The stage's first trial: its searched fields at the starting config's values, resolved as `tl-app run`
    resolves them beside the stage's fixed values (e.g. the best head's), so that a search never ends below what
    the run would train; None (logged) when they are outside the space."""
    searched = [param.name for param in hp.space]
    beside = {k: v for k, v in fixed.items() if k not in searched}
    start_recipe = type(recipe)(config_lib.apply_values(recipe.config, beside, recipe.name))
    start, misfits = spaces.starting_values(hp, start_recipe.searched_values(searched))
    if start is None:
        log.info(f"tune: the {stage} search cannot start from the run's own values ({', '.join(misfits)} outside"
                 " its space): every trial is the tuner's")
    else:
        log.info(f"tune: the {stage} search starts from the run's own values: {start}")
    return start


def _row(stage, trial, values, score, seconds, status="COMPLETED"):
    """A finished trial as trials.csv and the choice of best.yaml read it."""
    return {"stage": stage, "trial": trial, "values": values, "score": round(score, 5), "seconds": round(seconds, 1),
            "status": status}


def _carried_values(row):
    """A trial's values without the head search's `fine_tune_epochs: 0` (it only made those trials head-only)."""
    return {k: v for k, v in row["values"].items() if k != "fine_tune_epochs" or row["stage"] == spaces.FINE_TUNE}


def _entry(row, stages):
    """result.json's `best` for a trial's row: a head trial's values train the head alone when a fine-tuning search
    ran (it did not beat that head), else fine-tune as the run is configured."""
    values = _carried_values(row)
    if row["stage"] == spaces.HEAD and spaces.FINE_TUNE in stages:
        values["fine_tune_epochs"] = 0
    return {"stage": row["stage"], "trial": row["trial"], "score": row["score"], "values": values}


def _own_trial(recipe, space, fixed, best_head, deadline, trials_dir):
    """Rows (none or one) of the fine-tuning trial `own`: the starting config as `tl-app run` trains it (head and
    fine-tuning values both its own), so that the two searches together never end below it on validation.

    Skipped when the best head is the run's own (the fine-tuning search starts from it then), or past the deadline.
    """
    cfg = config_lib.apply_values(recipe.config, fixed, recipe.name)
    best = config_lib.apply_values(cfg, best_head, recipe.name)
    if all(getattr(best, k) == getattr(cfg, k) for k in best_head if k != EPOCH_FIELDS[spaces.HEAD]):
        return []
    if deadline is not None and time.time() >= deadline:
        log.info("tune: no time left for the run's own configuration as a fine-tuning trial")
        return []
    own = type(recipe)(cfg)
    values = {**fixed, **own.searched_values(sorted(f for f, spec in space.items() if isinstance(spec, dict)))}
    log.info(f"tune: fine_tune trial own (the run's own configuration): {values}")
    result = run_trial(own, trials_dir, f"{spaces.FINE_TUNE}_own", METRIC, values)
    return [_row(spaces.FINE_TUNE, "own", values, result[f"val_{METRIC}"], result["seconds"])]


def _search(recipe, stage, hp_space, fixed, trials, tuner, deadline, tune_dir, trials_dir, seconds=()):
    """Rows (`stage`, `trial`, `values`, `score`, `seconds`, `status`) of one stage's finished trials, by trial id.

    One KerasTuner search, each trial a run of the recipe's pipeline with the trial's values.

    Args:
        recipe: the Recipe whose config every trial changes.
        stage: `head` or `fine_tune` (the KerasTuner project's name in `tune_dir`).
        hp_space: the searched fields' specs; fixed: the values every trial has.
        trials: the most trials to run.
        tuner: "bayesian", "hyperband" or "random".
        deadline: time.time() after which no trial starts (None: no budget).
        tune_dir, trials_dir: KerasTuner's state; the trials' run directories.
        seconds: durations of the stage's trials run outside the search (`own`), for the budget's judgement.
    """
    hp_space = dict(hp_space)
    epochs_spec = None
    if tuner == "hyperband":  # Hyperband sets the stage's epochs itself
        epochs_spec = hp_space.pop(EPOCH_FIELDS[stage], getattr(recipe.config, EPOCH_FIELDS[stage]))
    hp = spaces.hyperparameters(hp_space)
    oracle = _oracle(tuner, hp, trials, recipe.config.seed, epochs_spec)
    oracle.deadline, oracle.trial_seconds = deadline, list(seconds)
    oracle.start = _start(recipe, stage, hp, fixed)

    def run(values, trial_id):
        chosen = _trial_values(values, stage, fixed)
        cfg = config_lib.apply_values(recipe.config, chosen, recipe.name)
        log.info(f"tune: {stage} trial {trial_id}: {chosen}")
        result = run_trial(type(recipe)(cfg), trials_dir, f"{stage}_{trial_id}", METRIC, chosen)
        oracle.trial_seconds.append(result["seconds"])
        return {f"val_{METRIC}": result[f"val_{METRIC}"]}

    try:
        _tuner(oracle, tune_dir, stage, run).search()
    except Exception as exc:  # KerasTuner's FatalError around our UserError: say it in one line
        if isinstance(exc.__cause__, UserError):
            raise exc.__cause__ from None
        raise
    finished = [t for t in oracle.trials.values() if t.status == "COMPLETED" and t.score is not None]
    rows = []
    for t in sorted(finished, key=lambda t: t.trial_id):
        recorded = trial_result(trials_dir, recipe.name, f"{stage}_{t.trial_id}") or {}
        rows.append(_row(stage, t.trial_id, recorded.get("values", {}), t.score, recorded.get("seconds", 0.0),
                         t.status))
    return rows


def tune(recipe, trials=30, fine_tune_trials=8, budget_minutes=None, tuner="bayesian", resume=False, search=None,
         logdir="runs", run_id=None, deterministic=True):
    """Search `recipe`'s hyperparameters with KerasTuner; returns result.json's dict (best values, figures).

    Args:
        recipe: a Recipe, config resolved (its values are the starting point every trial changes, and each
            search's first trial).
        trials: head-search trials.
        fine_tune_trials: fine-tuning-search trials (0: no fine-tuning search).
        budget_minutes: start no trial after this many minutes (nor one the time left cannot fit).
        tuner: "bayesian", "hyperband" or "random".
        resume: continue the named (`run_id`) or latest tuning of the recipe.
        search: a YAML/JSON search-space file replacing the family's (`tl_app.select.search_space`).
        logdir: the tuning directory is `<logdir>/<recipe>/tune-<run_id>/`.
        run_id: its name after `tune-` (default: a timestamp).
        deterministic: run every trial with op determinism (`deterministic: true` in its config and best.yaml),
            so the same values score the same; False leaves the config's own `deterministic` (for a GPU kernel
            that has no deterministic implementation).

    Examples:
        >>> import tl_app  # doctest: +SKIP
        >>> tl_app.tune("digits", trials=10, fine_tune_trials=0)["best"]["values"]  # doctest: +SKIP
        {'class_weight': 'none', 'dropout': 0.1, 'hidden_units': 256, ...}
    """
    started = time.time()
    if trials < 1:
        raise UserError(f"--trials {trials}: at least 1.")
    if fine_tune_trials < 0:
        raise UserError(f"--fine-tune-trials {fine_tune_trials}: 0 (no fine-tuning search) or more.")
    if budget_minutes is not None and budget_minutes <= 0:
        raise UserError(f"--budget-minutes {budget_minutes:g}: give a positive number of minutes.")
    if tuner not in TUNERS:
        raise UserError(f"--tuner {tuner}: choose one of {', '.join(TUNERS)}.")
    run_paths.check_run_id(run_id)
    if search:
        space, where = spaces.load_search_file(search)
    else:
        space, where = recipe.search_space(), (lambda field: f"{recipe.name}'s search space")
    spaces.check_space(recipe, space, where)
    stages = spaces.split(space)
    if fine_tune_trials == 0 or getattr(recipe.config, "fine_tune_epochs", None) is None:
        stages.pop(spaces.FINE_TUNE, None)
    if not stages:
        raise UserError("the search space searches nothing (every field has a plain value); give a field a type.")
    defaults = config_lib.to_dict(recipe.default_config())
    user_values = {k: v for k, v in config_lib.to_dict(recipe.config).items() if v != defaults.get(k)}
    search_record = {"format": SEARCH_FORMAT, "space": json.loads(spaces.fingerprint(space)), "tuner": tuner,
                     "trials": trials, "fine_tune_trials": fine_tune_trials, "deterministic": deterministic,
                     "config": json.loads(json.dumps(user_values, default=str))}
    tune_dir = _tune_dir(recipe, logdir, run_id, resume)
    if resume:
        _check_same_search(tune_dir, search_record)
    else:
        with open(os.path.join(tune_dir, SEARCH_FILE), "w", encoding="utf-8") as f:
            json.dump(search_record, f, indent=1, sort_keys=True)
    log.info(f"tune: {tune_dir} ({', '.join(f'{s}: {sorted(f)}' for s, f in stages.items())})")

    trials_dir = os.path.join(tune_dir, "trials")
    deadline = started + budget_minutes * 60 if budget_minutes else None
    fixed = {**spaces.fixed_values(space), **({"deterministic": True} if deterministic else {})}
    best_values, rows, best = {}, [], None
    with reuse.reused_data():  # every trial is a run: decode the data once, not once a trial
        for stage, stage_space in stages.items():
            stage_fixed = {**fixed, **best_values}
            hp_space = stage_space
            if stage == spaces.HEAD and "fine_tune_epochs" in defaults:
                stage_fixed["fine_tune_epochs"] = 0  # the head search trains the head alone
            head_epochs = stages.get(spaces.HEAD, {}).get(EPOCH_FIELDS[spaces.HEAD])
            if stage == spaces.FINE_TUNE and isinstance(head_epochs, dict):
                # The head that scores best alone is often over-trained as a start for fine-tuning (it fits the
                # frozen features, not the features fine-tuning moves): search its length again with fine-tuning.
                hp_space = {**stage_space, EPOCH_FIELDS[spaces.HEAD]: head_epochs}
            stage_rows = []
            if stage == spaces.FINE_TUNE:  # the run's own configuration, when the best head is another
                stage_rows = _own_trial(recipe, space, fixed, best_values, deadline, trials_dir)
            stage_rows += _search(recipe, stage, hp_space, stage_fixed,
                                  trials if stage == spaces.HEAD else fine_tune_trials, tuner, deadline, tune_dir,
                                  trials_dir, [row["seconds"] for row in stage_rows])
            if not stage_rows:
                raise UserError(f"tune: no {stage} trial finished (see {trials_dir}); check the recipe runs with"
                                " `tl-app run` first.")
            rows += stage_rows
            top = max(stage_rows, key=lambda r: r["score"])
            best_values = _carried_values(top)
            if best is None or top["score"] >= best["score"]:  # a tie goes to fine-tuning
                best = top
            log.info(f"tune: best {stage} trial {top['trial']}: val_{METRIC} {top['score']:.4f} with {best_values}")
        examples = best_trial.validation_examples(recipe, fixed)
    is_own = best_trial.own_test(recipe, fixed, sorted({*space, *EPOCH_FIELDS.values()}))
    kept, choice = best_trial.choose(best, rows, [row for row in rows if is_own(row["values"])], examples)
    best_trial.log_choice(kept, choice, head_alone=kept["stage"] == spaces.HEAD and spaces.FINE_TUNE in stages)
    best = _entry(kept, stages)
    result = _write_results(tune_dir, recipe, user_values, best, rows, started, choice)
    result["tune_dir"] = tune_dir
    return result
