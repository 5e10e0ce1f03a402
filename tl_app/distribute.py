"""Choosing the tf.distribute strategy a run trains under."""
from tl_app.errors import UserError

STRATEGIES = ("auto", "one_device")


def make_strategy(name="auto"):
    """The strategy for `name`; `auto` is one device until more devices are supported."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise UserError(f"unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}.")
    return tf.distribute.get_strategy()
