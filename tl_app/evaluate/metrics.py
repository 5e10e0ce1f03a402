"""Classification metrics of one set of predictions, computed with scikit-learn.

`classification_metrics` returns the flat keys `metrics.json` holds and a quality
gate may name: overall figures (`accuracy`, `balanced_accuracy`, `precision_macro`,
`recall_macro`, `f1_macro`, the same `_weighted`, `log_loss`, `ece`, and
`top5_accuracy` when there are more than 10 classes) and per class
(`precision/<class>`, `recall/<class>`, `f1/<class>`, `support/<class>`).
`loss` (the training loss on the split, as Keras computes it) is added by the
caller, which has the model. Expected calibration error (15 equal-width bins of
top-class confidence) is the one figure scikit-learn has no function for:
`reliability_bins` counts the bins as `sklearn.calibration.calibration_curve` does.
"""
import warnings

import numpy as np

ECE_BINS = 15
TOP_K = 5
TOP_K_ABOVE = 10  # top-5 accuracy only when there are more classes than this
PER_CLASS = ("precision", "recall", "f1", "support")
OVERALL = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_weighted",
           "recall_weighted", "f1_weighted", "log_loss", "ece")


def metric_names(class_names, with_loss=True):
    """Every key `classification_metrics` (plus `loss`) reports for these classes, overall names first.

    Known before training, so a gate naming a metric the run will not report fails in seconds.

    Examples:
        >>> metric_names(["cat", "dog"])[:3], metric_names(["cat", "dog"])[-1]
        (['accuracy', 'loss', 'balanced_accuracy'], 'support/dog')
    """
    names = ["accuracy"] + (["loss"] if with_loss else []) + list(OVERALL[1:])
    if len(class_names) > TOP_K_ABOVE:
        names.append(f"top{TOP_K}_accuracy")
    return names + [f"{kind}/{name}" for kind in PER_CLASS for name in class_names]


def is_per_class(name):
    return "/" in name


def reliability_bins(labels, probabilities, n_bins=ECE_BINS):
    """Top-class confidence against accuracy in `n_bins` equal-width bins.

    Returns `(edges, counts, accuracy, confidence)`: per bin the number of examples, their
    accuracy and mean confidence (NaN for empty bins). A bin holds confidences in
    (lower, upper], the first also 0, as in `sklearn.calibration.calibration_curve`.
    """
    probabilities = np.asarray(probabilities, np.float64)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / counts
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / counts
    return edges, counts, accuracy, mean_confidence


def expected_calibration_error(labels, probabilities, n_bins=ECE_BINS):
    """Sum over bins of |accuracy - confidence| weighted by the bin's share of examples (Guo et al., 2017)."""
    _, counts, accuracy, confidence = reliability_bins(labels, probabilities, n_bins)
    filled = counts > 0
    return float(np.sum(counts[filled] / counts.sum() * np.abs(accuracy[filled] - confidence[filled])))


def classification_metrics(labels, probabilities, class_names):
    """The flat metrics of predicted `probabilities` [N, C] against integer `labels` [N].

    Args:
        labels: true class indices.
        probabilities: class probabilities per example (rows sum to 1).
        class_names: index = label; names the per-class keys.

    Examples:
        >>> import numpy as np
        >>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
        >>> m = classification_metrics(np.array([0, 1, 1, 1]), probs, ["cat", "dog"])
        >>> m["accuracy"], m["recall/dog"], m["support/cat"]
        (0.75, 0.6666666666666666, 1.0)
    """
    from sklearn import metrics as skm

    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities, np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)  # float32 softmax rows: sum 1 +- 1e-7
    predicted = probabilities.argmax(axis=1)
    classes = list(range(len(class_names)))
    out = {"accuracy": float(skm.accuracy_score(labels, predicted))}
    with warnings.catch_warnings():  # classes absent from a small split: their figures are 0, said once in the docs
        warnings.simplefilter("ignore")
        out["balanced_accuracy"] = float(skm.balanced_accuracy_score(labels, predicted))
        for average in ("macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(labels, predicted, labels=classes, average=average,
                                                             zero_division=0)
            out.update({f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)})
        per_class = skm.precision_recall_fscore_support(labels, predicted, labels=classes, average=None,
                                                        zero_division=0)
    out["log_loss"] = float(skm.log_loss(labels, probabilities, labels=classes))
    out["ece"] = expected_calibration_error(labels, probabilities)
    if len(classes) > TOP_K_ABOVE:
        out[f"top{TOP_K}_accuracy"] = float(skm.top_k_accuracy_score(labels, probabilities, k=TOP_K, labels=classes))
    for kind, values in zip(PER_CLASS, per_class):
        out.update({f"{kind}/{name}": float(value) for name, value in zip(class_names, values)})
    return out


def confusion_matrix(labels, predicted, num_classes):
    """[C, C] counts, rows the true class, columns the predicted one (scikit-learn's)."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    return sk_confusion(np.asarray(labels).reshape(-1), np.asarray(predicted).reshape(-1),
                        labels=list(range(num_classes)))
