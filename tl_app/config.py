"""Recipe configs: typed dataclasses with defaults, `key=value` overrides, typed values, JSON round trip.

Every field of a recipe's config can be set from the command line with
`--set key=value` (a string parsed by the field's type), from a config file or
from Python (`tl_app.run("digits", epochs=5)`: typed values, checked against
the field's type), so a typo or a wrong type fails before any data is loaded.
"""
import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass

from tl_app.errors import UserError


OptimizerName = typing.Literal["adam", "adamw", "sgd"]
ScheduleName = typing.Literal["constant", "step", "exponential", "cosine", "linear"]  # formulas in engine.schedules
OPTIMIZERS = typing.get_args(OptimizerName)
SCHEDULES = typing.get_args(ScheduleName)


@dataclass
class RecipeConfig:
    """Fields every recipe has. Recipes subclass this to add their own."""

    epochs: int = 5
    batch_size: int = 32  # global batch size (split across replicas)
    learning_rate: float = 1e-3
    optimizer: OptimizerName = "adam"
    dropout: float = 0.2
    seed: int = 42  # data splits and initial weights; fixed so runs repeat
    data_dir: typing.Optional[str] = None
    validation_fraction: float = 0.1  # carved from train when a data set has no validation split
    test_fraction: float = 0.2  # carved from the data when a data set has no test split
    steps_per_execution: int = 1
    shuffle_buffer: int = 10_000
    # Fine-tuning controls (tl_app.engine implements them; recipes set defaults).
    lr_schedule: ScheduleName = "constant"  # linear and cosine decay to min_learning_rate
    warmup_steps: int = 0  # linear warmup from 0; when 0, warmup_fraction applies
    warmup_fraction: float = 0.0  # share of a phase's steps spent warming up
    decay_rate: float = 0.5  # step: factor every step_every_epochs; exponential: factor per epoch
    step_every_epochs: int = 1  # step schedule: epochs between drops
    min_learning_rate: float = 0.0  # floor of every decaying schedule (cosine and linear end there)
    weight_decay: float = 0.0  # decoupled (adamw); LayerNorm and bias weights excluded
    momentum: float = 0.9  # sgd
    clipnorm: typing.Optional[float] = None
    clipvalue: typing.Optional[float] = None
    l1: float = 0.0  # on the new head's kernels
    l2: float = 0.0
    label_smoothing: float = 0.0
    early_stopping_patience: typing.Optional[int] = None  # None = no early stopping
    early_stopping_monitor: str = "val_loss"
    restore_best_weights: bool = True
    class_weight: typing.Optional[str] = None  # None, or "auto" (balanced)
    # auto: float16 on GPU, bfloat16 on TPU and on AMX / AVX512_BF16 CPUs where measured faster, else float32
    # (engine.precision);
    # none | float32 | bfloat16 | float16 force one.
    mixed_precision: typing.Optional[str] = "auto"
    deterministic: bool = False  # op determinism (slower); seeds are always set
    # Phases on cached features keep them in $TL_APP_CACHE/features: the next run on the same data and base reuses them.
    keep_features: bool = True
    # After the export: TFLite models in saved_models/<recipe>-tflite/<N>/ (none|dynamic|float16|int8, a list, or all).
    tflite: typing.Optional[str] = None
    tflite_calibration_samples: int = 200  # int8: training examples that calibrate activation ranges
    # Data inspection (docs/inspect.md): label errors, duplicates, leaks, outliers from the frozen-base features;
    # auto: whenever the recipe has a head phase on frozen-base features.
    inspect_data: typing.Literal["auto", "true", "false"] = "auto"
    exclude_issues: typing.Optional[str] = None  # e.g. "label,leak": train without the flagged examples
    inspect_folds: int = 5  # k of the out-of-fold probe whose probabilities confident learning reads
    inspect_cut: typing.Literal["below_chance", "both", "noise_rate"] = "below_chance"  # label issues flagged
    inspect_similarity: float = 0.995  # cosine of features at or above which two examples are near-duplicates


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
NONE_WORDS = {"none", "null"}  # what --set (and a search space's choice) says for None


def _type_name(tp):
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _is_optional(tp):
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in args


def _parse(raw, tp):
    """`raw` (a string) as type `tp`; ValueError(reason) when it is not one."""
    text = raw.strip()
    if _is_optional(tp):
        if text.lower() in NONE_WORDS:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0] if len(inner) == 1 else str
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        if text in choices:
            return text
        raise ValueError(f"expected one of {', '.join(map(str, choices))}")
    if tp is str:
        return raw
    if tp not in (bool, int, float):
        raise ValueError(f"config fields of type {_type_name(tp)} cannot be set from text")
    try:
        if tp is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        return tp(text)
    except ValueError:
        raise ValueError(f"'{raw}' is not a valid {_type_name(tp)}") from None


def parse_value(key, raw, tp):
    """Parse the string `raw` (from `--set key=raw`) as type `tp` (int, float, bool, str, Optional, Literal)."""
    try:
        return _parse(raw, tp)
    except ValueError as exc:
        detail = "" if str(exc).startswith("expected") or "cannot" in str(exc) else \
            f" (field '{key}' has type {_type_name(tp)})"
        raise UserError(f"--set {key}={raw}: {exc}{detail}.", key=key) from None


def coerce_value(key, value, tp, where):
    """A typed value (from a config file or Python) checked against the field's type `tp`.

    Strings are parsed as `--set` parses them (so YAML's `learning_rate: 3e-4`, a string to
    PyYAML, is a float); other values must already be of the field's type (an int passes as a float).

    Args:
        key: the field's name.
        value: the value as the file or the caller gave it.
        tp: the field's type.
        where: where the value came from, for the message (e.g. "run.yaml, line 3").
    """
    def wrong(reason):
        return UserError(f"{where}: {key}: {reason} (field '{key}' has type {_type_name(tp)}).", key=key)

    if isinstance(value, str):
        try:
            return _parse(value, tp)
        except ValueError as exc:
            raise wrong(str(exc)) from None
    if value is None:
        if _is_optional(tp):
            return None
        raise wrong("null is not allowed")
    inner = [a for a in typing.get_args(tp) if a is not type(None)] if _is_optional(tp) else [tp]
    base = inner[0] if len(inner) == 1 else str
    if typing.get_origin(base) is typing.Literal:
        if value in typing.get_args(base):
            return value
        raise wrong(f"expected one of {', '.join(map(str, typing.get_args(base)))}, not {value!r}")
    if base is bool and isinstance(value, bool):
        return value
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise wrong(f"{value!r} is not a valid {_type_name(base)}")


def field_types(config_cls):
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def unknown_field(key, config, recipe_name, where, owners=()):
    """The UserError for a key that is not a field of `config`: the recipes that have it, or the closest field.

    Args:
        owners: names of other recipes whose config has `key` (e.g. adapt_epochs on digits: the text recipes).
    """
    names = list(field_types(type(config)))
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if owners:  # e.g. adapt_epochs on digits: say which recipes take it, not a look-alike field
        hint = f" It is a field of {', '.join(owners)}."
    else:
        hint = f" Did you mean '{close[0]}'?" if close else ""
    return UserError(f"{where}: '{key}' is not a config field of {recipe_name}.{hint}"
                     f" See `tl-app config {recipe_name}` for the fields.", key=key)


def apply_overrides(config, assignments, recipe_name="the recipe", owners_of=lambda key: ()):
    """A copy of `config` with `["key=value", ...]` applied, each checked against the field's type.

    `owners_of(key)` names the recipes that have a field this config lacks (for the message).
    """
    types_by_name = field_types(type(config))
    changes = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set epochs=3.")
        if key not in types_by_name:
            raise unknown_field(key, config, recipe_name, f"--set {item}", owners_of(key))
        changes[key] = parse_value(key, raw, types_by_name[key])
    return dataclasses.replace(config, **changes)


def apply_values(config, values, recipe_name="the recipe", where=lambda key: "config", owners_of=lambda key: ()):
    """A copy of `config` with `{key: typed value}` applied (config files, `tl_app.run(**fields)`).

    Args:
        config: the config to start from.
        values: field name -> value (see `coerce_value`).
        recipe_name: for messages.
        where: key -> where that value came from, for messages (e.g. "run.yaml, line 3").
        owners_of: key -> names of the recipes that have a field this config lacks (for the message).
    """
    types_by_name = field_types(type(config))
    changes = {}
    for key, value in values.items():
        if key not in types_by_name:
            raise unknown_field(key, config, recipe_name, where(key), owners_of(key))
        changes[key] = coerce_value(key, value, types_by_name[key], where(key))
    return dataclasses.replace(config, **changes)


# Ranges of numeric fields, by name, checked wherever a config has the field (None passes: "not set").
AT_LEAST = {
    "epochs": 0, "fine_tune_epochs": 0, "gradual_unfreeze": 0, "early_stopping_patience": 0, "warmup_steps": 0,
    "learning_rate": 0.0, "min_learning_rate": 0.0, "momentum": 0.0,
    "l1": 0.0, "l2": 0.0, "weight_decay": 0.0, "fine_tune_weight_decay": 0.0,
    "batch_size": 1, "steps_per_execution": 1, "shuffle_buffer": 1, "hidden_units": 0, "step_every_epochs": 1,
    "tflite_calibration_samples": 1, "adapt_epochs": 0,
}
# fine_tune_learning_rate 0 would be a fine-tune phase that changes nothing (fine_tune_epochs=0 skips it).
POSITIVE = ("decay_rate", "clipnorm", "clipvalue", "fine_tune_clipnorm", "alpha", "fine_tune_learning_rate",
            "adapt_learning_rate")
# [0, 1). label_smoothing and warmup_fraction are not here: engine.optimizers.check_options checks them, phase overrides too.
FRACTIONS = ("dropout", "fine_tune_warmup_fraction", "rotation", "zoom", "translation", "contrast",
             "synonym_rate", "insertion_rate", "swap_rate", "deletion_rate")
SHARES = ("validation_fraction", "test_fraction")  # (0, 1): a split carved from the data needs examples
HELD_OUT = ("adapt_holdout_fraction",)  # (0, 1), not summed with SHARES


def check_values(config, metrics=("accuracy",)):
    """Raise UserError for a field outside its range (types are checked by `apply_overrides`).

    Args:
        config: a recipe config.
        metrics: the recipe's metric names (what `early_stopping_monitor` may watch, besides the loss).
    """

    def bad(name, rule):
        return UserError(f"{name}={getattr(config, name)}: must be {rule} (--set {name}=...).", key=name)

    values = {name: getattr(config, name) for name in to_dict(config)}
    for name, lowest in AT_LEAST.items():
        if values.get(name) is not None and values[name] < lowest:
            raise bad(name, f"{lowest} or more")
    for name in POSITIVE:
        if values.get(name) is not None and not values[name] > 0:
            raise bad(name, "above 0")
    for name in FRACTIONS:
        if values.get(name) is not None and not 0 <= values[name] < 1:
            raise bad(name, "in [0, 1) (0 turns it off)")
    for name in SHARES + HELD_OUT:
        if values.get(name) is not None and not 0 < values[name] < 1:
            raise bad(name, "in (0, 1)")
    if "seed" in values and not 0 <= values["seed"] < 2**32:
        raise bad("seed", "in [0, 2**32)")
    shares = [values[name] for name in SHARES if values.get(name) is not None]
    if len(shares) == 2 and sum(shares) >= 1:
        raise UserError(f"validation_fraction={shares[0]} and test_fraction={shares[1]} leave no training data:"
                        " their sum must be below 1.", key="test_fraction")
    if values.get("tflite"):
        from tl_app.export.tflite import parse_modes

        parse_modes(values["tflite"], given=f"tflite={values['tflite']}")
    monitor = values.get("early_stopping_monitor")
    watchable = [f"{prefix}{name}" for name in ("loss", *metrics) for prefix in ("val_", "")]
    if monitor is not None and monitor not in watchable:
        raise UserError(f"early_stopping_monitor={monitor}: this recipe logs {', '.join(watchable)};"
                        " choose one of them (--set early_stopping_monitor=...).", key="early_stopping_monitor")


def to_dict(config):
    return dataclasses.asdict(config)


def to_json(config):
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def describe_fields(config):
    """Rows of (name, type, value) for `tl-app config`."""
    types_by_name = field_types(type(config))
    return [(name, _type_name(tp), getattr(config, name)) for name, tp in types_by_name.items()]
