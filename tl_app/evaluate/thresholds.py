"""Per-label decision thresholds of a multi-label model, chosen on the validation split.

A single 0.5 is the common weakness of multi-label tools: labels differ in frequency and in how
confident the model is about them. Here each label gets its own threshold, in two steps:

1. `best_f1_threshold`: the cut that maximizes the label's F1 on validation, cutting between two
   distinct probabilities the model gave (the threshold is their midpoint, so an example's probability
   never sits on it, where float rounding in another runtime could flip the decision). Ties take the
   higher threshold (fewer positives).
2. `shrink_thresholds`: that cut rests on a few validation examples (on 90 BBC rows, seed 42, the
   cuts of two labels fell to 0.174 and 0.148 while the others lay near 0.5), so it is pulled toward
   one shared cut (`shared_threshold`, the best micro F1 over all labels' validation decisions together,
   L times the evidence) in proportion to its noise: on the logit scale, label j's cut becomes
   `shared + w_j (own_j - shared)` with `w_j = tau^2 / (tau^2 + se_j^2)`, where `se_j^2` is the
   variance of label j's best cut over bootstrap resamples of the validation rows and `tau^2` the
   spread of the labels' cuts around the shared one beyond that noise (the empirical-Bayes,
   James-Stein estimate: Efron & Morris, JASA 1975). A label whose cut is well determined keeps it;
   labels whose cuts differ from the shared one no more than their noise explains all take the
   shared cut.

Each cut is raised to a floor so a rare label the validation split barely shows is not switched on
for everything; a label validation never shows positive keeps 0.5. The bootstrap is seeded: the same
probabilities give the same thresholds. The thresholds are saved in the export
(`assets.extra/thresholds.json`) and applied inside its serving signature.
"""
import numpy as np

DEFAULT = 0.5  # a label validation has no positive for: no evidence to move it
RESAMPLES = 200  # bootstrap resamples of the validation rows that measure each cut's noise
LOGIT_CLIP = 1e-6  # cuts are averaged on the logit scale: probabilities kept off 0 and 1
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


def best_f1_thresholds(labels, probabilities, floor=0.1):
    """float [L]: `best_f1_threshold` of each label (column) of multi-hot `labels` [N, L] and `probabilities`.

    Examples:
        >>> y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
        >>> p = np.array([[0.8, 0.3], [0.6, 0.9], [0.4, 0.2], [0.1, 0.35]])
        >>> [round(float(t), 3) for t in best_f1_thresholds(y, p)]
        [0.5, 0.325]
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    return np.array([best_f1_threshold(labels[:, j], probabilities[:, j], floor)[0]
                     for j in range(labels.shape[1])], np.float64)


def shared_threshold(labels, probabilities, floor=0.1):
    """The one cut maximizing micro F1 over every label's decisions together (`best_f1_threshold` of them pooled)."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    return best_f1_threshold(labels.ravel(), probabilities.ravel(), floor)[0]


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p / (1 - p))


def shrink_thresholds(own, shared, noise):
    """`(thresholds, weights)`: each label's `own` cut pulled toward `shared` on the logit scale, by its `noise`.

    Args:
        own: float [L], each label's best cut.
        shared: the shared cut.
        noise: float [L], the variance of each label's cut (logit scale) over bootstrap resamples.

    The weight of label j's own cut is `tau^2 / (tau^2 + noise_j)`, `tau^2` = the mean squared distance of
    the own cuts from the shared one less the mean noise (at least 0): James-Stein shrinkage.

    Examples:
        >>> t, w = shrink_thresholds([0.15, 0.5, 0.6], 0.5, [1.0, 0.01, 0.01])  # the first cut is noisy
        >>> [round(float(x), 3) for x in t], [round(float(x), 2) for x in w]
        ([0.326, 0.5, 0.599], [0.42, 0.99, 0.99])
    """
    own_z, shared_z, noise = _logit(own), float(_logit(shared)), np.asarray(noise, np.float64)
    tau2 = max(0.0, float(np.mean((own_z - shared_z) ** 2) - noise.mean()))
    weights = np.where(noise > 0, tau2 / np.maximum(tau2 + noise, 1e-12), 1.0)
    return 1 / (1 + np.exp(-(shared_z + weights * (own_z - shared_z)))), weights


def choose_thresholds(labels, probabilities, floor=0.1, resamples=RESAMPLES, seed=0):
    """float [L]: each label's best-F1 cut on validation, shrunk toward the shared cut by its bootstrap noise.

    Labels with no positive in `labels` keep 0.5 and take no part; every cut is at least `floor`.

    Args:
        labels: multi-hot [N, L] of the validation split.
        probabilities: [N, L] the model gave it.
        floor: the lowest threshold returned.
        resamples: bootstrap resamples of the rows (0: each label's own best cut, unshrunk).
        seed: of the resampling.

    Examples:
        >>> y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
        >>> p = np.array([[0.8, 0.3], [0.6, 0.9], [0.4, 0.2], [0.1, 0.35]])
        >>> [round(float(t), 3) for t in choose_thresholds(y, p, resamples=0)]
        [0.5, 0.325]
    """
    labels = np.asarray(labels).astype(bool)
    probabilities = np.asarray(probabilities, np.float64)
    own = best_f1_thresholds(labels, probabilities, floor)
    seen = np.flatnonzero(labels.sum(axis=0) > 0)
    if resamples <= 0 or len(seen) < 2:  # one label: nothing to share
        return own
    y, p = labels[:, seen], probabilities[:, seen]
    rng = np.random.default_rng(seed)
    cuts = np.array([best_f1_thresholds(y[rows], p[rows], floor)
                     for rows in (rng.integers(0, len(y), len(y)) for _ in range(resamples))])
    shrunk, _ = shrink_thresholds(own[seen], shared_threshold(y, p, floor), _logit(cuts).var(axis=0))
    out = own.copy()
    out[seen] = np.maximum(shrunk, floor)
    return out


def thresholds_record(class_names, thresholds, floor, split="validation"):
    """thresholds.json's content: `{"labels": [...], "thresholds": [...], "chosen_on", "rule", "floor"}` in labels.txt's
    order; `split=None`: one fixed threshold for every label (config `fixed_threshold`)."""
    rule = ("per label, the threshold maximizing F1 on the split, shrunk toward the one maximizing micro F1 by its"
            " bootstrap noise (James-Stein, logit scale), at least the floor" if split else
            "one fixed threshold for every label (fixed_threshold)")
    return {"labels": list(class_names), "thresholds": [float(t) for t in thresholds], "chosen_on": split,
            "rule": rule, "floor": float(floor)}
