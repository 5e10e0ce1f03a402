"""The Keras metrics a run tracks every epoch (train and validation), by the names recipes give them.

A recipe's `metrics()` lists names (`"accuracy"`, `"f1_macro"`) or Keras metric
objects. Names Keras does not know are built here for the model's class count,
inside the strategy's scope (`keras_metrics`), so early stopping can watch
`val_f1_macro` as it watches `val_accuracy`, and the custom training loop
(multi-worker) reports the same figures from the confusion counts it sums.
"""
import keras
import numpy as np
from keras import ops

F1_MACRO = "f1_macro"
F1_MICRO = "f1_micro"  # multi-hot labels (several labels per example), sigmoid outputs at 0.5
# Names that are better when higher (early stopping's direction); losses are better lower.
HIGHER_IS_BETTER = ("accuracy", "acc", "sparse_categorical_accuracy", F1_MACRO, F1_MICRO, "binary_accuracy")


class MacroF1Score(keras.metrics.F1Score):
    """Macro-averaged F1 over all classes, for integer labels (Keras' F1Score wants one-hot labels).

    Args:
        num_classes: the model's class count; the metric's variables are built now, in the
            current strategy scope, not lazily inside a distributed step.
        name: the name in the logs (`f1_macro`, and `val_f1_macro` on validation).

    Examples:
        >>> import numpy as np
        >>> metric = MacroF1Score(num_classes=3)
        >>> metric.update_state(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 1, 2]])
        >>> round(float(metric.result()), 4)
        0.7778
    """

    def __init__(self, num_classes, name=F1_MACRO, dtype=None):
        super().__init__(average="macro", name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self._build((None, self.num_classes), (None, self.num_classes))

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), [-1])
        one_hot = ops.one_hot(labels, self.num_classes, dtype=self.dtype)
        if sample_weight is not None:
            sample_weight = ops.reshape(sample_weight, [-1])
        return super().update_state(one_hot, y_pred, sample_weight)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


class MicroF1Score(keras.metrics.F1Score):
    """Micro-averaged F1 of multi-hot labels [N, L] and sigmoid outputs thresholded at 0.5.

    Args:
        num_classes: the model's output width (labels); variables built now, in the strategy scope.
        name: the name in the logs (`f1_micro`, `val_f1_micro`).

    Examples:
        >>> import numpy as np
        >>> metric = MicroF1Score(num_classes=2)
        >>> metric.update_state(np.array([[1, 1], [0, 1]]), np.array([[0.9, 0.2], [0.1, 0.8]]))
        >>> round(float(metric.result()), 4)
        0.8
    """

    def __init__(self, num_classes, name=F1_MICRO, dtype=None):
        super().__init__(average="micro", threshold=0.5, name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self._build((None, self.num_classes), (None, self.num_classes))

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


def name_of(metric):
    """The name a metric logs under (a string as given, else the object's `name`)."""
    return metric if isinstance(metric, str) else getattr(metric, "name", type(metric).__name__)


def keras_metrics(metrics, num_classes):
    """The recipe's metrics for `model.compile`: `"f1_macro"` becomes a `MacroF1Score` for `num_classes`,
    `"f1_micro"` a `MicroF1Score`.

    Call inside the strategy's scope (the metric's variables are created here).

    Args:
        metrics: the recipe's `metrics()` (names and/or Keras metric objects).
        num_classes: the model's output width.
    """
    built = {F1_MACRO: MacroF1Score, F1_MICRO: MicroF1Score}
    return [built[metric](num_classes) if isinstance(metric, str) and metric in built else metric
            for metric in metrics or []]


def monitor_mode(monitor):
    """`min`, `max` or `auto` (Keras decides) for early stopping on `monitor` (`val_loss`, `val_f1_macro`, ...)."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss":
        return "min"
    return "max" if name in HIGHER_IS_BETTER else "auto"


def f1_from_confusion(confusion):
    """Macro F1 of a [C, C] confusion matrix (rows true, columns predicted), as `MacroF1Score` computes it.

    The custom loop sums confusion counts across replicas and workers, then asks the same
    Keras metric for the figure, each (true, predicted) cell weighted by its count.

    Examples:
        >>> round(f1_from_confusion([[1, 0, 0], [0, 1, 0], [0, 1, 1]]), 4)
        0.7778
    """
    confusion = np.asarray(confusion, np.float32)
    rows, cols = np.nonzero(confusion)
    metric = MacroF1Score(confusion.shape[0])
    if len(rows):
        metric.update_state(rows, np.eye(confusion.shape[0], dtype=np.float32)[cols],
                            sample_weight=confusion[rows, cols])
    return float(metric.result())
