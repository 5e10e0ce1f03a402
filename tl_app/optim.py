"""Optimizers built from a recipe config and a phase's overrides."""
from tl_app.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")


def option(cfg, phase, name, default=None):
    """A phase's override of config field `name`, else the config's value."""
    if name in phase.options:
        return phase.options[name]
    return getattr(cfg, name, default)


def build_optimizer(cfg, phase, steps_per_epoch=None):
    """A fresh Keras optimizer for one phase (each phase starts its own)."""
    import keras

    name = option(cfg, phase, "optimizer")
    lr = phase.learning_rate
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=option(cfg, phase, "weight_decay", 0.01))
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=option(cfg, phase, "momentum", 0.9))
    raise UserError(f"optimizer '{name}' is not supported; choose one of {', '.join(OPTIMIZERS)} (--set optimizer=...).")
