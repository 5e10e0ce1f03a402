"""Weight regularization of the new head, from the config's `l1` / `l2` fields.

Recipes build their heads; they pass `head_regularizer(cfg)` as the
`kernel_regularizer` of the head's Dense layers so `--set l2=1e-4` works for
every recipe. The penalty joins the loss through `model.losses` (Keras fit and
the custom loop both add it).
"""


def head_regularizer(cfg):
    """A Keras regularizer for head kernels, or None when `cfg.l1` and `cfg.l2` are both 0.

    Args:
        cfg: a `RecipeConfig` (fields `l1`, `l2`).

    Examples:
        >>> from tl_app.config import RecipeConfig
        >>> head_regularizer(RecipeConfig()) is None
        True
        >>> head_regularizer(RecipeConfig(l2=1e-4)).get_config()["l2"]
        0.0001
    """
    import keras

    from tl_app.errors import UserError

    l1, l2 = float(cfg.l1 or 0.0), float(cfg.l2 or 0.0)
    if l1 < 0 or l2 < 0:
        raise UserError(f"--set l1={l1} / l2={l2}: regularization factors cannot be negative.")
    if not l1 and not l2:
        return None
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    return keras.regularizers.L1(l1) if l1 else keras.regularizers.L2(l2)
