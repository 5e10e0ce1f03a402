"""Confident learning (Northcutt, Jiang and Chuang, JAIR 2021) in numpy: which given labels are likely wrong.

From out-of-sample probabilities `P` (n x K) and given labels `s`:

1. per-class thresholds `t_j` = mean of `P[i, j]` over the examples given class j (its mean self-confidence);
2. the confident joint `C[given, likely]`: example i counts in column j when `P[i, j] >= t_j` (argmax over such j);
3. calibrated to the label counts and normalised, it estimates the joint of given and true labels; its
   off-diagonal mass times n is the number of label errors it expects, per (given, likely) pair;
4. prune by noise rate: for each pair, that many examples of the given class with the largest margin
   `P[:, likely] - P[:, given]` are flagged;
5. the flagged examples are ranked by label quality, the self-confidence `P[i, s_i]` (lowest first), and each
   gets a suggested class (the most probable other class).

The cut (`find_label_issues(cut=...)`): CL's whole pruned set (`"noise_rate"`) flags many examples of genuinely
confusable classes (Fashion-MNIST, 150 of 3,050 moved: 366 flagged, precision 0.37). `"below_chance"` (the
default) keeps the pruned examples whose given class is less probable than a uniform guess (self-confidence
< 1/K): the probe is confident the label is wrong, not only unsure between two neighbours (194 flagged, recall
0.85, precision 0.66 on that set). `"both"` keeps those whose most probable class is another (cleanlab's
`predicted_neq_given` within the pruned set; its `filter_by="both"` prunes by class as well). On the same
probabilities `"noise_rate"` and cleanlab 2.9's `prune_by_noise_rate` flag the same examples up to rounding
(Jaccard 0.987, `benchmarks/inspect_faults.py --cleanlab`). docs/inspect.md has what each cut measured.
"""
import numpy as np

CUTS = ("below_chance", "both", "noise_rate")


def per_class_thresholds(labels, probabilities):
    """`t_j`: the mean probability of class j over the examples given class j (0 for a class nobody has)."""
    labels = np.asarray(labels, np.int64)
    k = probabilities.shape[1]
    return np.array([probabilities[labels == j, j].mean() if np.any(labels == j) else 0.0 for j in range(k)])


def confident_joint(labels, probabilities, thresholds=None):
    """(C, likely): C[given, likely] counts, and per example its likely class (-1: above no threshold).

    Examples:
        Thresholds (0.9 + 0.8 + 0.7) / 3 = 0.8 and (0.8 + 0.7 + 0.1) / 3 = 0.53; example 2 is above neither:

        >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
        >>> C, likely = confident_joint(np.array([0, 0, 0, 1, 1, 1]), p)
        >>> C.tolist(), likely.tolist()
        ([[2, 0], [1, 2]], [0, 0, -1, 1, 1, 0])
    """
    labels = np.asarray(labels, np.int64)
    thresholds = per_class_thresholds(labels, probabilities) if thresholds is None else thresholds
    above = probabilities >= thresholds[None, :] - 1e-12  # an example exactly at its class mean counts
    masked = np.where(above, probabilities, -np.inf)
    likely = np.where(above.any(axis=1), masked.argmax(axis=1), -1)
    k = probabilities.shape[1]
    joint = np.zeros((k, k), np.int64)
    counted = likely >= 0
    np.add.at(joint, (labels[counted], likely[counted]), 1)
    return joint, likely


def calibrated_joint(joint, labels):
    """The confident joint with each row scaled to its class's label count, then normalised to sum to 1."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=joint.shape[0]).astype(np.float64)
    rows = joint.sum(axis=1, keepdims=True).astype(np.float64)
    calibrated = np.where(rows > 0, joint / np.maximum(rows, 1) * counts[:, None], 0.0)
    return calibrated / max(calibrated.sum(), 1e-12)


def prune_by_noise_rate(labels, probabilities, joint):
    """Boolean mask of examples flagged: per off-diagonal (given i, likely j), round(Q[i, j] * n) examples
    given i with the largest margin P[:, j] - P[:, i] (never all examples of a class)."""
    labels = np.asarray(labels, np.int64)
    n, k = probabilities.shape
    to_remove = np.rint(calibrated_joint(joint, labels) * n).astype(np.int64)
    flagged = np.zeros(n, bool)
    for i in range(k):
        members = np.flatnonzero(labels == i)
        budget = max(len(members) - 1, 0)  # keep at least one example of every class
        for j in range(k):
            count = min(int(to_remove[i, j]), budget) if i != j else 0
            if count <= 0:
                continue
            margin = probabilities[members, j] - probabilities[members, i]
            flagged[members[np.argsort(-margin, kind="stable")[:count]]] = True
    return flagged


def suggested_labels(labels, probabilities):
    """The most probable class other than the given one, per example."""
    others = np.array(probabilities, np.float64, copy=True)
    others[np.arange(len(labels)), np.asarray(labels, np.int64)] = -np.inf
    return others.argmax(axis=1)


def find_label_issues(labels, probabilities, cut="below_chance"):
    """Likely label errors, most certain first: (indices, self-confidence, suggested class) arrays.

    Args:
        labels: (n,) given labels.
        probabilities: (n, K) out-of-sample probabilities (`out_of_fold.out_of_fold_probabilities`).
        cut: "below_chance" (pruned by noise rate, and the given class less probable than 1/K), "both" (pruned,
            and another class most probable) or "noise_rate" (the whole pruned set).

    Examples:
        >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1]])
        >>> indices, quality, suggested = find_label_issues(np.array([0, 0, 0, 1, 1, 1]), p)
        >>> indices.tolist(), quality.round(2).tolist(), suggested.tolist()
        ([5], [0.1], [0])
    """
    if cut not in CUTS:
        raise ValueError(f"cut {cut!r}: expected one of {', '.join(CUTS)}")
    labels = np.asarray(labels, np.int64)
    probabilities = np.asarray(probabilities, np.float64)
    joint, _ = confident_joint(labels, probabilities)
    flagged = prune_by_noise_rate(labels, probabilities, joint)
    if cut == "below_chance":
        flagged &= probabilities[np.arange(len(labels)), labels] < 1.0 / probabilities.shape[1]
    elif cut == "both":
        flagged &= probabilities.argmax(axis=1) != labels
    indices = np.flatnonzero(flagged)
    quality = probabilities[indices, labels[indices]]
    order = np.argsort(quality, kind="stable")
    indices = indices[order]
    return indices, quality[order], suggested_labels(labels, probabilities)[indices]
