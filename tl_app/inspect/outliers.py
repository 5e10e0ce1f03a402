"""Outliers: the examples farthest from their k nearest training neighbours in feature space.

A blank scan, a text in another language or a file of another kind lands far from every training example.
The score is the mean cosine distance to the k nearest training examples (itself excluded); the examples
flagged are those above Tukey's far-out fence of the training scores, Q3 + 3 IQR, so a clean set flags few
and the cut does not depend on its size.
"""
import numpy as np

from tl_app.inspect.duplicates import normalized


def knn_scores(reference, queries, k=5, same=False):
    """Mean cosine distance of each query to its k nearest `reference` rows (`same`: queries are the reference,
    the first neighbour, itself, skipped)."""
    from sklearn.neighbors import NearestNeighbors

    reference, queries = normalized(reference), normalized(queries)
    k = max(1, min(k, len(reference) - (1 if same else 0)))
    distances, _ = NearestNeighbors(n_neighbors=k + (1 if same else 0)).fit(reference).kneighbors(queries)
    distances = distances[:, 1:] if same else distances
    return (distances ** 2 / 2.0).mean(axis=1)  # unit vectors: |a - b|^2 / 2 = 1 - cos


def find_outliers(features, k=5, fence=3.0):
    """`{split: (indices, scores)}` of the outliers of each split, farthest first.

    Args:
        features: `{split: (n, d) features}`; "train" is the reference.
        k: neighbours averaged.
        fence: flagged above Q3 + fence * IQR of the training scores.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> train = np.abs(rng.normal(0, 1, (50, 8))) + 5.0
        >>> train[7] = -train[7]  # points the other way
        >>> found = find_outliers({"train": train})
        >>> found["train"][0].tolist()
        [7]
    """
    scores = {split: knn_scores(features["train"], x, k, same=split == "train") for split, x in features.items()}
    q1, q3 = np.percentile(scores["train"], [25, 75])
    limit = q3 + fence * (q3 - q1)
    found = {}
    for split, score in scores.items():
        indices = np.flatnonzero(score > limit)
        indices = indices[np.argsort(-score[indices], kind="stable")]
        found[split] = (indices, score[indices])
    return found
