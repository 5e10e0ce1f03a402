"""Losses the engine derives from a recipe's loss and the config (label smoothing)."""
import keras

from tl_app.errors import UserError


@keras.saving.register_keras_serializable(package="tl_app")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy with label smoothing.

    Keras' sparse loss has no `label_smoothing`; this one-hots the integer labels
    (depth = the number of classes in `y_pred`) and smooths them:
    `(1 - s) * one_hot + s / num_classes`, then categorical cross-entropy.

    Args:
        label_smoothing: s in [0, 1).
        from_logits: whether `y_pred` are logits rather than probabilities.

    Examples:
        >>> loss = SmoothedSparseCategoricalCrossentropy(0.1)
        >>> round(float(loss([0], [[0.9, 0.1]])), 4)
        0.2152
    """

    def __init__(self, label_smoothing=0.0, from_logits=False, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        from keras import ops

        y_pred = ops.convert_to_tensor(y_pred)
        num_classes = ops.shape(y_pred)[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, from_logits=self.from_logits)
        return config


@keras.saving.register_keras_serializable(package="tl_app")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy over independent outputs (sigmoid probabilities), each positive term weighted.

    The loss of multi-label heads: for label l, `-(w_l * y log p + (1 - y) log(1 - p))`, averaged over
    labels; labels smoothed to `y (1 - s) + s / 2` first (Keras' binary rule).

    Args:
        positive_weights: one weight per label (a list), or None for 1.
        label_smoothing: s in [0, 1).

    Examples:
        >>> loss = WeightedBinaryCrossentropy([1.0, 3.0])
        >>> round(float(loss([[1.0, 1.0]], [[0.9, 0.5]])), 4)
        1.0924
    """

    def __init__(self, positive_weights=None, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.positive_weights = None if positive_weights is None else [float(w) for w in positive_weights]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        from keras import ops

        y_pred = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0 - 1e-7)
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), "float32")
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        weights = 1.0 if self.positive_weights is None else ops.convert_to_tensor(self.positive_weights, "float32")
        terms = weights * y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred)
        return -ops.mean(terms, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(positive_weights=self.positive_weights, label_smoothing=self.label_smoothing)
        return config


def training_loss(recipe_loss, label_smoothing):
    """The loss to train with: the recipe's, smoothed when `label_smoothing` > 0.

    Args:
        recipe_loss: what `Recipe.loss()` returned.
        label_smoothing: the config's value.
    """
    if not label_smoothing:
        return recipe_loss
    if isinstance(recipe_loss, keras.losses.SparseCategoricalCrossentropy):
        from_logits = bool(recipe_loss.get_config().get("from_logits", False))
        return SmoothedSparseCategoricalCrossentropy(label_smoothing, from_logits=from_logits)
    if isinstance(recipe_loss, WeightedBinaryCrossentropy):
        return WeightedBinaryCrossentropy(recipe_loss.positive_weights, label_smoothing)
    if isinstance(recipe_loss, keras.losses.CategoricalCrossentropy):
        config = recipe_loss.get_config()
        config["label_smoothing"] = label_smoothing
        return keras.losses.CategoricalCrossentropy(**{k: v for k, v in config.items() if k != "dtype"})
    raise UserError(f"--set label_smoothing={label_smoothing}: the recipe's loss {type(recipe_loss).__name__} "
                    "takes no label smoothing (only (sparse) categorical and binary cross-entropy do).")
