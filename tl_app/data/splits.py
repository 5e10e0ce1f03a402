"""Seeded splits of a data set into train / validation / test, plain or stratified by class.

Every family carves its missing splits here, so one seed gives the same split
whatever reads the files.
"""
import numpy as np


def seeded_split(n, fractions, seed):
    """Index arrays for consecutive fractions of a seeded permutation of range(n).

    `fractions` are the shares of all but the first part, e.g. (0.2,) -> [80%, 20%].

    Examples:
        >>> [len(p) for p in seeded_split(10, (0.2, 0.1), seed=0)]
        [7, 2, 1]
    """
    order = np.random.default_rng(seed).permutation(n)
    parts, start = [], 0
    sizes = [int(round(n * f)) for f in fractions]
    first = n - sum(sizes)
    for size in [first] + sizes:
        parts.append(order[start : start + size])
        start += size
    return parts


def stratified_indices(labels, num_classes, fractions, seed, sort=True):
    """Index arrays [rest, part_1, ...]: each class split by the seeded `fractions`, the rest first.

    Args:
        labels: int label of every example.
        num_classes: classes 0..num_classes-1 (one permutation is drawn per class, in order).
        fractions: shares of the parts after the first, e.g. (0.1, 0.2) for validation and test.
        seed: seeds the permutations.
        sort: return each part in the examples' order; False keeps the drawn order (class by class).

    Examples:
        >>> [p.tolist() for p in stratified_indices([0, 0, 0, 0, 1, 1, 1, 1], 2, (0.25,), seed=0)]
        [[0, 1, 2, 5, 6, 7], [3, 4]]
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = [[] for _ in range(len(fractions) + 1)]
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)[rng.permutation(int(np.sum(labels == c)))]
        sizes = [int(round(len(members) * f)) for f in fractions]
        bounds = np.cumsum([len(members) - sum(sizes)] + sizes)
        start = 0
        for part, end in zip(parts, bounds):
            part.extend(members[start:end].tolist())
            start = end
    parts = [np.array(p, np.int64) for p in parts]
    return [np.sort(p) for p in parts] if sort else parts
