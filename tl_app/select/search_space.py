"""The search space of `tl-app tune`: config fields and the KerasTuner hyperparameter each one takes.

A space is `{field: spec}`, as the families' `Recipe.search_space()` give it and as a `--search`
YAML/JSON file writes it (the file replaces the family's space):

    learning_rate: {type: Float, min_value: 1.0e-4, max_value: 1.0e-2, sampling: log}
    dropout: {type: Choice, values: [0.0, 0.2, 0.5]}
    hidden_units: {type: Int, min_value: 32, max_value: 256, step: 32}
    fine_tune_learning_rate: {type: Float, min_value: 1.0e-5, max_value: 1.0e-3, sampling: log}
    epochs: 20          # a plain value fixes the field in every trial

`type` is KerasTuner's (`Float`, `Int`, `Choice`, `Boolean`) and the other keys are its arguments.
Fields read by fine-tuning (`fine_tune_*`, `gradual_unfreeze`) form the second, fine-tuning search;
the others the head search. Every field must be the recipe's, and every value it can take within
the field's range: checked before any trial, with the file's line.
"""
import json

from tl_app import config as config_lib
from tl_app.errors import UserError

TYPES = {"Float": ("min_value", "max_value", "step", "sampling"), "Int": ("min_value", "max_value", "step", "sampling"),
         "Choice": ("values", "ordered"), "Boolean": ()}
SAMPLINGS = ("linear", "log", "reverse_log")
HEAD, FINE_TUNE = "head", "fine_tune"


def stage_of(field):
    """`fine_tune` for the fields the fine-tuning phase reads, else `head`."""
    return FINE_TUNE if field.startswith("fine_tune") or field == "gradual_unfreeze" else HEAD


def load_search_file(path):
    """`(space, where)` of a `--search` file: where(field) names the file and the field's line."""
    from tl_app import config_file

    loaded = config_file.load(path)
    if loaded.recipe or loaded.resolved:
        raise UserError(f"{path}: a search file holds config fields only (no recipe:, resolved:); see docs/select.md.")
    return dict(loaded.values), loaded.where


def _candidates(field, spec, where):
    """The values a spec can give (range ends, choices) for the range check; UserError for a malformed spec."""
    if not isinstance(spec, dict):
        return [spec]
    kind = spec.get("type")
    if kind not in TYPES:
        raise UserError(f"{where(field)}: {field}: type must be one of {', '.join(TYPES)} (KerasTuner's), not {kind!r}.")
    unknown = sorted(set(spec) - {"type", *TYPES[kind]})
    if unknown:
        raise UserError(f"{where(field)}: {field}: {kind} takes {', '.join(TYPES[kind]) or 'no arguments'},"
                        f" not {', '.join(unknown)}.")
    if kind == "Boolean":
        return [True, False]
    if kind == "Choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise UserError(f"{where(field)}: {field}: Choice needs values: [a, b, ...].")
        if len({type(v) for v in values}) > 1 and not all(isinstance(v, (int, float)) for v in values):
            raise UserError(f"{where(field)}: {field}: Choice values must be of one type (KerasTuner's rule): {values}.")
        return values
    low, high = spec.get("min_value"), spec.get("max_value")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
        raise UserError(f"{where(field)}: {field}: {kind} needs numbers min_value < max_value, got {low!r}, {high!r}.")
    if spec.get("sampling", "linear") not in SAMPLINGS:
        raise UserError(f"{where(field)}: {field}: sampling is one of {', '.join(SAMPLINGS)}.")
    if spec.get("sampling") in ("log", "reverse_log") and low <= 0:
        raise UserError(f"{where(field)}: {field}: log sampling needs min_value above 0.")
    return [low, high]


def check_space(recipe, space, where=lambda field: "search space"):
    """UserError (with `where(field)`) for a field the recipe lacks or a value outside the field's range."""
    types = config_lib.field_types(type(recipe.config))
    for field, spec in space.items():
        if field not in types:
            raise config_lib.unknown_field(field, recipe.config, recipe.name, where(field))
        if field == recipe.base_field:
            raise UserError(f"{where(field)}: {field}: choose the base with `tl-app select` (or {field}=auto), then"
                            " tune its hyperparameters.")
        for value in _candidates(field, spec, where):
            cfg = config_lib.apply_values(recipe.config, {field: value}, recipe.name, where=where)
            try:
                config_lib.check_values(cfg, recipe.metric_names())
                type(recipe)(cfg).check_config()
            except UserError as exc:
                raise UserError(f"{where(field)}: {field}={value!r} is outside its range: {exc}") from None


def split(space):
    """`{stage: {field: spec}}` for the head and fine-tuning searches (a stage with nothing to search is left out)."""
    out = {}
    for field, spec in space.items():
        out.setdefault(stage_of(field), {})[field] = spec
    return {stage: fields for stage, fields in out.items() if any(isinstance(s, dict) for s in fields.values())}


def hyperparameters(space):
    """KerasTuner `HyperParameters` of the searched fields of `space` (plain values are fixed, not searched)."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for field, spec in sorted(space.items()):
        if not isinstance(spec, dict):
            continue
        kind, args = spec["type"], {k: v for k, v in spec.items() if k != "type"}
        if kind == "Choice":
            values = args.pop("values")
            if all(isinstance(v, (int, float)) for v in values) and any(isinstance(v, float) for v in values):
                values = [float(v) for v in values]
            hp.Choice(field, values, **args)
        else:
            getattr(hp, kind)(field, **args)
    return hp


def starting_values(hp, values):
    """`(start, misfits)`: `values` as the values of KerasTuner `HyperParameters` `hp` (a Choice's own member, so
    a trial's recorded values compare equal), or None with the `field=value` pairs that `hp` cannot give.

    Examples:
        >>> hp = hyperparameters({"dropout": {"type": "Choice", "values": [0.0, 0.2]}, "epochs": 5,
        ...                       "learning_rate": {"type": "Float", "min_value": 1e-4, "max_value": 1e-2}})
        >>> starting_values(hp, {"dropout": 0, "learning_rate": 1e-3})
        ({'dropout': 0.0, 'learning_rate': 0.001}, [])
        >>> starting_values(hp, {"dropout": 0.1, "learning_rate": None})
        (None, ['dropout=0.1', 'learning_rate=None'])
        >>> starting_values(hyperparameters({"class_weight": {"type": "Choice", "values": ["none", "auto"]}}),
        ...                 {"class_weight": None})
        ({'class_weight': 'none'}, [])
    """
    start, misfits = {}, []
    for param in hp.space:
        value = values.get(param.name)
        fitted = _fit(param, value)
        if fitted is None:
            misfits.append(f"{param.name}={value!r}")
        else:
            start[param.name] = fitted
    return (None if misfits else start), misfits


def _fit(param, value):
    """`value` as `param` would give it, or None when it cannot."""
    name = type(param).__name__
    if name == "Choice" and value is None:  # an optional field's None is the choice "none", as --set parses it
        return next((v for v in param.values if isinstance(v, str) and v.lower() in config_lib.NONE_WORDS), None)
    if value is None or (isinstance(value, bool) != (name == "Boolean")):
        return None
    if name == "Boolean":
        return value
    if name == "Choice":
        return next((v for v in param.values if v == value and type(v) is not bool), None)
    if not isinstance(value, (int, float)) or not param.min_value <= value <= param.max_value:
        return None
    if name == "Int":
        step = param.step or 1
        return int(value) if value == int(value) and (int(value) - param.min_value) % step == 0 else None
    if param.step:  # a Float with a step gives min_value + k * step only
        k = round((value - param.min_value) / param.step)
        return float(value) if abs(param.min_value + k * param.step - value) <= 1e-9 * max(1.0, abs(value)) else None
    return float(value)


def fixed_values(space):
    """`{field: value}` of the fields a space fixes (plain values)."""
    return {field: spec for field, spec in space.items() if not isinstance(spec, dict)}


def fingerprint(space):
    """The space as canonical JSON: what `--resume` compares with the saved search."""
    return json.dumps(space, sort_keys=True, default=str)
