"""Per-label decision thresholds of a multi-label model, chosen on the validation split.

A single 0.5 is the common weakness of multi-label tools: labels differ in frequency and in how
confident the model is about them. Here each label gets the threshold that maximizes its own F1
on validation (cutting between two distinct probabilities the model gave: the threshold is their
midpoint, so an example's probability never sits on it, where float rounding in another runtime
could flip the decision), raised to a floor so a rare label the validation split barely shows is not switched on for
everything; a label validation never shows positive keeps 0.5. Ties take the higher threshold
(fewer positives). The thresholds are saved in the export (`assets.extra/thresholds.json`) and
applied inside its serving signature.
"""
import numpy as np

DEFAULT = 0.5  # a label validation has no positive for: no evidence to move it
THRESHOLDS_FILE = "thresholds.json"


def best_f1_threshold(labels, probabilities, floor=0.1):
    """`(threshold, f1)` maximizing F1 of `probabilities >= threshold` against 0/1 `labels` (one label).

    Args:
        labels: 0/1 [N].
        probabilities: [N].
        floor: the lowest threshold returned.

    Examples:
        >>> best_f1_threshold(np.array([1, 1, 0, 0]), np.array([0.9, 0.3, 0.2, 0.1]))
        (0.25, 1.0)
        >>> best_f1_threshold(np.array([1, 0, 0, 0]), np.array([0.05, 0.02, 0.01, 0.01]), floor=0.1)[0]
        0.1
    """
    labels = np.asarray(labels).astype(bool)
    probabilities = np.asarray(probabilities, np.float64)
    positives = int(labels.sum())
    if positives == 0:
        return max(DEFAULT, floor), 0.0
    order = np.argsort(-probabilities, kind="stable")
    sorted_p, sorted_y = probabilities[order], labels[order]
    true_pos = np.cumsum(sorted_y)
    # Candidate k: predict positive for the first k+1 examples, i.e. threshold = sorted_p[k]; only the last
    # index of a run of equal probabilities is a threshold one can actually set.
    last = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    k = np.flatnonzero(last)
    f1 = 2 * true_pos[k] / (k + 1 + positives)
    best = k[np.flatnonzero(f1 == f1.max())[0]]  # the highest threshold among the best
    below = sorted_p[best + 1] if best + 1 < len(sorted_p) else 0.0  # the next lower distinct probability
    threshold = float((sorted_p[best] + below) / 2)
    if threshold < floor:
        threshold = float(floor)
        predicted = probabilities >= threshold
        hits = int((predicted & labels).sum())
        return threshold, float(2 * hits / (predicted.sum() + positives))
    return threshold, float(f1.max())


def choose_thresholds(labels, probabilities, floor=0.1):
    """float [L]: `best_f1_threshold` of each label (column) of multi-hot `labels` [N, L] and `probabilities`.

    Examples:
        >>> y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
        >>> p = np.array([[0.8, 0.3], [0.6, 0.9], [0.4, 0.2], [0.1, 0.35]])
        >>> [round(float(t), 3) for t in choose_thresholds(y, p)]
        [0.5, 0.325]
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    return np.array([best_f1_threshold(labels[:, j], probabilities[:, j], floor)[0]
                     for j in range(labels.shape[1])], np.float64)


def thresholds_record(class_names, thresholds, floor, split="validation"):
    """thresholds.json's content: `{"labels": [...], "thresholds": [...], "chosen_on", "rule", "floor"}` in labels.txt's
    order; `split=None`: one fixed threshold for every label (config `fixed_threshold`)."""
    rule = ("per label, the threshold maximizing F1 on the split, at least the floor" if split else
            "one fixed threshold for every label (fixed_threshold)")
    return {"labels": list(class_names), "thresholds": [float(t) for t in thresholds], "chosen_on": split,
            "rule": rule, "floor": float(floor)}
