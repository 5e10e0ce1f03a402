"""Optimizers built from a recipe config and a phase's overrides.

Every optimizer field can be overridden per phase with `Phase.options`
(e.g. `Phase("fine_tune", 3, 2e-5, options={"optimizer": "adamw",
"weight_decay": 0.01, "lr_schedule": "linear", "warmup_fraction": 0.1,
"clipnorm": 1.0})`); `option(cfg, phase, name)` resolves one field.
"""
import math

from tl_app.config import OPTIMIZERS, SCHEDULES
from tl_app.errors import UserError

# Variables never weight-decayed: biases and normalization scales/offsets (Keras names them so).
NO_DECAY_NAMES = ("bias", "gamma", "beta")


def option(cfg, phase, name, default=None):
    """A phase's override of config field `name`, else the config's value.

    Args:
        cfg: the recipe config.
        phase: the `Phase` (its `options` dict wins), or None for the config alone.
        name: the config field, e.g. "optimizer".
        default: returned when neither the phase nor the config has the field.
    """
    if phase is not None and name in phase.options:
        return phase.options[name]
    return getattr(cfg, name, default)


def check_options(cfg, phases=()):
    """Raise UserError now (before training) for unknown optimizer or schedule names anywhere.

    Args:
        cfg: the recipe config.
        phases: the recipe's phases (their overrides are checked too).
    """
    for phase in [None, *phases]:
        where = "" if phase is None else f" (phase '{phase.name}')"
        name = option(cfg, phase, "optimizer")
        if name not in OPTIMIZERS:
            raise UserError(f"optimizer '{name}'{where} is not supported; choose one of {', '.join(OPTIMIZERS)} "
                            "(--set optimizer=...).")
        schedule = option(cfg, phase, "lr_schedule", "constant")
        if schedule not in SCHEDULES:
            raise UserError(f"lr_schedule '{schedule}'{where} is not supported; choose one of {', '.join(SCHEDULES)} "
                            "(--set lr_schedule=...).")
        fraction = option(cfg, phase, "warmup_fraction", 0.0) or 0.0
        if not 0.0 <= fraction < 1.0:
            raise UserError(f"warmup_fraction {fraction}{where} must be in [0, 1).")
    if cfg.class_weight not in (None, "auto"):
        raise UserError(f"--set class_weight={cfg.class_weight}: choose auto (balanced from the train labels) or none.")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise UserError(f"--set label_smoothing={cfg.label_smoothing}: must be in [0, 1).")


def warmup_steps(cfg, phase, total_steps):
    """Warmup steps of a phase: `warmup_steps` when set, else `warmup_fraction` of its steps."""
    steps = int(option(cfg, phase, "warmup_steps", 0) or 0)
    if steps > 0:
        return steps
    return int(math.floor((option(cfg, phase, "warmup_fraction", 0.0) or 0.0) * total_steps))


def learning_rate(cfg, phase, steps_per_epoch):
    """A float (constant, no warmup) or a `PhaseSchedule` for one phase.

    Args:
        cfg: the recipe config.
        phase: the `Phase` (its learning_rate is the peak rate).
        steps_per_epoch: batches per epoch; None only allowed for a constant rate without warmup.
    """
    from tl_app.engine.schedules import PhaseSchedule

    kind = option(cfg, phase, "lr_schedule", "constant")
    peak = float(phase.learning_rate)
    wants_steps = kind != "constant" or option(cfg, phase, "warmup_steps", 0) or option(cfg, phase, "warmup_fraction", 0.0)
    if not wants_steps:
        return peak
    if not steps_per_epoch:
        raise ValueError(f"lr_schedule {kind!r} with warmup needs steps_per_epoch")
    total = steps_per_epoch * phase.epochs
    return PhaseSchedule(
        kind,
        peak,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        warmup_steps=warmup_steps(cfg, phase, total),
        decay_rate=option(cfg, phase, "decay_rate", 0.5),
        step_every_epochs=option(cfg, phase, "step_every_epochs", 1),
        min_learning_rate=option(cfg, phase, "min_learning_rate", 0.0),
    )


def normalization_variables(model):
    """Variables of the model's normalization layers (LayerNorm, BatchNorm, ...), whatever their names."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        if "Normalization" in type(layer).__name__ or "LayerNorm" in type(layer).__name__:
            found.extend(layer.weights)
    return found


def build_optimizer(cfg, phase, steps_per_epoch=None, model=None):
    """A fresh Keras optimizer for one phase (each phase starts its own).

    Args:
        cfg: the recipe config (optimizer, weight_decay, momentum, clipnorm, clipvalue, schedule fields).
        phase: the `Phase`; `phase.options` override config fields.
        steps_per_epoch: batches per epoch, needed by schedules and warmup.
        model: the model it will train; its normalization layers are excluded from weight decay.
    """
    import keras

    name = option(cfg, phase, "optimizer")
    common = {"learning_rate": learning_rate(cfg, phase, steps_per_epoch)}
    for clip in ("clipnorm", "clipvalue"):
        if option(cfg, phase, clip) is not None:
            common[clip] = float(option(cfg, phase, clip))
    decay = float(option(cfg, phase, "weight_decay", 0.0) or 0.0)
    if name == "adam":
        optimizer = keras.optimizers.Adam(weight_decay=decay or None, **common)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(weight_decay=decay, **common)
    elif name == "sgd":
        optimizer = keras.optimizers.SGD(momentum=float(option(cfg, phase, "momentum", 0.9)),
                                         weight_decay=decay or None, **common)
    else:
        raise UserError(f"optimizer '{name}' is not supported; choose one of {', '.join(OPTIMIZERS)} (--set optimizer=...).")
    if decay:
        # Decaying biases and normalization parameters hurts fine-tuning (BERT, AdamW paper practice).
        excluded = normalization_variables(model) if model is not None else None
        optimizer.exclude_from_weight_decay(var_list=excluded, var_names=list(NO_DECAY_NAMES))
    return optimizer
