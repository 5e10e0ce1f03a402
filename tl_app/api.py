"""The public Python API (`tl_app.run`) and the recipe/config resolution the CLI shares with it.

    import tl_app
    result = tl_app.run("digits", epochs=5)              # any config field, as with --set
    result.metrics["accuracy"], result.export_path, result.run_dir

A recipe is named by its registered name (`digits`), a file (`my_recipe.py`,
`my_recipe.py:ClassName`), a Recipe subclass, or a config file that names one.
Its config is, lowest precedence first: the recipe's defaults, the config file,
`--set` assignments, then typed values (keyword arguments, or the CLI's
`--epochs`-style flags).
"""
import dataclasses
import os

from tl_app import config as config_lib
from tl_app import log
from tl_app import config_file as config_file_lib
from tl_app import recipe_files, registry
from tl_app.errors import UserError


def recipe_class(spec=None, config_file=None):
    """The recipe class that `spec` (or, without one, the config file) names.

    Args:
        spec: a registered name, `path.py[:Class]`, a Recipe subclass, or None.
        config_file: a loaded `config_file.ConfigFile`, or None.
    """
    from tl_app.recipe import Recipe

    named = config_file.recipe if config_file else None
    if spec is None:
        if config_file is None or not (config_file.recipe or config_file.recipe_file):
            where = f" ({config_file.path} names none: add `recipe: NAME`)" if config_file else ""
            raise UserError(f"name a recipe: `tl-app run RECIPE` (see `tl-app list`), or a --config file that names one"
                            f"{where}.")
        spec = config_file.recipe_file or config_file.recipe
    if isinstance(spec, type) and issubclass(spec, Recipe):
        cls = spec
    elif isinstance(spec, str) and recipe_files.is_recipe_file(spec):
        cls = recipe_files.load(spec)
    elif isinstance(spec, str):
        cls = registry.get(spec)
    else:
        raise UserError(f"recipe {spec!r}: expected a recipe name, a path/to/file.py, or a tl_app.Recipe subclass.")
    if named and cls.name != named:
        raise UserError(f"{config_file.path} is a config of recipe '{named}', not '{cls.name}'; run it with"
                        f" `tl-app run --config {config_file.path}`, or drop its `recipe:` line.")
    return cls


def recipes_with_field(key):
    """Names of the known recipes whose config has field `key` (for the message of a field set on the wrong recipe)."""
    try:
        return [name for name in registry.names() if key in config_lib.field_types(registry.get(name).Config)]
    except UserError:
        return []


def resolve_config(recipe_cls, config_file=None, assignments=(), values=None):
    """The recipe's config: defaults < config file < `--set` assignments < typed `values`; range-checked.

    A value out of range names where it came from (the config file's line, or `--set`).

    Args:
        recipe_cls: the Recipe subclass.
        config_file: a loaded `config_file.ConfigFile`, or None.
        assignments: `["key=value", ...]` as given to `--set`.
        values: {field: typed value} (keyword arguments of `tl_app.run`, the CLI's dedicated flags);
            None values are left out.
    """
    name = recipe_cls.name or recipe_cls.__name__
    cfg = recipe_cls.default_config()
    origin = {}
    if config_file is not None:
        cfg = config_lib.apply_values(cfg, config_file.values, name, where=config_file.where,
                                      owners_of=recipes_with_field)
        origin.update({key: config_file.where(key) for key in config_file.values})
        repeated = config_file.repeated_values()
        cfg = config_lib.apply_values(cfg, repeated, name, where=config_file.where, owners_of=recipes_with_field)
        overridden = {item.partition("=")[0].strip() for item in assignments} | set(values or {})
        for key in sorted(set(repeated) - overridden):
            log.info(f"{config_file.where(key)}: {key}=auto resolved to {repeated[key]!r} in the run it records;"
                     f" repeating that (--set {key}=auto resolves it again)")
    cfg = config_lib.apply_overrides(cfg, assignments, name, owners_of=recipes_with_field)
    for item in assignments:
        origin.pop(item.partition("=")[0].strip(), None)
    given = {k: v for k, v in (values or {}).items() if v is not None}
    cfg = config_lib.apply_values(cfg, given, name, where=lambda key: "tl_app.run", owners_of=recipes_with_field)
    for key in given:
        origin.pop(key, None)
    try:
        recipe = recipe_cls(cfg)
        config_lib.check_values(cfg, recipe.metric_names())
        recipe.check_config()
    except UserError as exc:
        if exc.key in origin:
            raise UserError(f"{origin[exc.key]}: {exc}", key=exc.key) from None
        raise
    return cfg


def load_config_file(path):
    """A parsed config file, or None when `path` is None."""
    return config_file_lib.load(path) if path else None


def options_with_file(options, config_file, recipe_name):
    """`options` with the config file's `init_from` (the export its run started from) for a new run.

    A command naming `--init-from` keeps its own; a run that continues (`--resume`, an existing `--run-id`)
    takes its weights from its checkpoint instead.

    Args:
        options: the `RunOptions` the command gives.
        config_file: the loaded `--config` file, or None.
        recipe_name: the recipe's name (where its runs live).
    """
    from tl_app.pipeline import run_dirs

    recorded = config_file.init_from if config_file is not None else None
    if not recorded or options.init_from or options.resume:
        return options
    if options.run_id and os.path.isdir(run_dirs.run_path(options.logdir, recipe_name, options.run_id)):
        return options
    log.info(f"{config_file.path}: its run started from the export {recorded}; so does this one (as --init-from)")
    return dataclasses.replace(options, init_from=recorded)


def resolved_recipe(recipe=None, config=None, assignments=(), values=None):
    """The Recipe `recipe` (or the config file) names, its config resolved as `resolve_config` does.

    Args:
        recipe: a registered name, a recipe file, a Recipe subclass, or None when `config` names the recipe.
        config: a YAML or JSON config file path, or None.
        assignments: `["key=value", ...]` as given to `--set`.
        values: {field: typed value}; None values are left out.
    """
    loaded = load_config_file(config)
    cls = recipe_class(recipe, loaded)
    return cls(resolve_config(cls, loaded, assignments, values))


def recipe_of_export(export_dir, data_dir=None):
    """The Recipe the export was trained with, config as saved (`data_dir` replaced when given, and the
    recipe's `export_config_values`: nothing pretrained is looked for, the export has its weights).

    Args:
        export_dir: a version directory (`tl_app.export.saved_export.resolve_export`).
        data_dir: where the recipe's data is now (`--data-dir`), or None for the saved config's.
    """
    import os

    from tl_app.export.saved_export import ASSETS_EXTRA, CONFIG

    loaded = load_config_file(os.path.join(export_dir, ASSETS_EXTRA, CONFIG))
    if not (loaded.recipe or loaded.recipe_file):
        raise UserError(f"{loaded.path}: names no recipe (no 'recipe' key), so its data cannot be found;"
                        " convert an export of `tl-app run`.")
    cls = recipe_class(None, loaded)
    return cls(resolve_config(cls, loaded, values={**cls.export_config_values, "data_dir": data_dir}))


def run(recipe=None, *, config=None, options=None, **fields):
    """Run a recipe end to end (train, evaluate, export) as `tl-app run` does; returns a `RunResult`.

    Args:
        recipe: a registered name (`"digits"`), a file (`"my_recipe.py"` or `"my_recipe.py:Class"`), a Recipe
            subclass, or None when `config` names the recipe.
        config: a YAML or JSON config file (`tl-app run --config`), e.g. a run's saved config.json.
        options: a `RunOptions` (where runs and exports go, strategy, resume, ...).
        **fields: config fields (`epochs=5`, `learning_rate=3e-4`, `weights="offline"`, ...) and `RunOptions`
            fields (`export=False`, `logdir="runs"`, `run_id=...`); they win over the config file.

    Examples:
        >>> import tl_app
        >>> result = tl_app.run("digits", epochs=2, export=False, logdir="/tmp/tl_app_doc_runs")  # doctest: +SKIP
        >>> sorted(result.metrics)  # doctest: +SKIP
        ['accuracy', 'loss']
    """
    from tl_app.pipeline import RunOptions, run_recipe

    loaded = load_config_file(config)
    cls = recipe_class(recipe, loaded)
    option_names = {f.name for f in dataclasses.fields(RunOptions)}
    field_names = set(config_lib.field_types(cls.Config))
    both = sorted(option_names & field_names & set(fields))
    if both:
        raise UserError(f"{', '.join(both)}: both a run option and a config field of {cls.name}; pass"
                        " options=RunOptions(...) for the option.")
    chosen = {k: v for k, v in fields.items() if k in option_names and k not in field_names}
    run_options = dataclasses.replace(options or RunOptions(), **chosen)
    values = {k: v for k, v in fields.items() if k not in chosen}
    cfg = resolve_config(cls, loaded, values=values)
    return run_recipe(cls(cfg), options_with_file(run_options, loaded, cls.name))


def select(recipe=None, *, config=None, bases="offline", logdir="runs", run_id=None, max_params=None,
           max_latency_ms=None, **fields):
    """Rank a recipe's candidate bases on frozen features, as `tl-app select` does; returns selection.json's dict.

    Args:
        recipe: a registered name, a recipe file, a Recipe subclass, or None when `config` names the recipe.
        config: a YAML or JSON config file.
        bases: "offline", "all" or "name1,name2".
        logdir: selection.json goes to `<logdir>/<recipe>/select-<run_id>/`.
        run_id: the name after `select-` (default: a timestamp).
        max_params, max_latency_ms: drop bases over these limits.
        **fields: config fields (`data_dir=...`, `image_size=96`, `weights="offline"`, ...).

    Examples:
        >>> import tl_app
        >>> ranking = tl_app.select("image_folder", data_dir="photos", image_size=96)["ranking"]  # doctest: +SKIP
        >>> [entry["base"] for entry in ranking]  # doctest: +SKIP
        ['mobilenet_v2', 'efficientnet_lite2', 'efficientnet_lite0', 'xception']
    """
    from tl_app.select.choose import select as select_bases

    recipe_obj = resolved_recipe(recipe, config, values=fields)
    return select_bases(recipe_obj, bases, logdir, run_id, max_params, max_latency_ms, recipe_obj.config.keep_features)


def tune(recipe=None, *, config=None, trials=30, fine_tune_trials=8, budget_minutes=None, tuner="bayesian",
         resume=False, search=None, logdir="runs", run_id=None, deterministic=True, **fields):
    """Search a recipe's hyperparameters with KerasTuner, as `tl-app tune` does; returns result.json's dict.

    Args:
        recipe: a registered name, a recipe file, a Recipe subclass, or None when `config` names the recipe.
        config: a YAML or JSON config file (the starting point every trial changes).
        trials, fine_tune_trials: trials of the head search and of the fine-tuning search after it.
        budget_minutes: start no trial after this many minutes.
        tuner: "bayesian", "hyperband" or "random".
        resume: continue the named (`run_id`) or latest tuning where it stopped.
        search: a YAML/JSON search-space file replacing the recipe's.
        logdir, run_id: the tuning directory is `<logdir>/<recipe>/tune-<run_id>/`.
        deterministic: run trials with op determinism (the same values score the same; False for a GPU kernel
            without a deterministic implementation).
        **fields: config fields (`data_dir=...`, `preset="offline"`, ...).

    Examples:
        >>> import tl_app
        >>> result = tl_app.tune("digits", trials=5, fine_tune_trials=0, epochs=3)  # doctest: +SKIP
        >>> result["best_yaml"]  # doctest: +SKIP
        'runs/digits/tune-20261206-091500/best.yaml'
    """
    from tl_app.select.tuning import tune as tune_recipe

    recipe_obj = resolved_recipe(recipe, config, values=fields)
    return tune_recipe(recipe_obj, trials, fine_tune_trials, budget_minutes, tuner, resume, search, logdir, run_id,
                       deterministic)
