"""Duplicates and leaks: exact (content hash of the decoded input) and near (cosine similarity of features).

A pair inside one split, or between train and validation, is a `duplicate`; a test example with a twin in the
train or validation split is a `leak` (the model saw the test example: its test accuracy is inflated). Exact
twins are found by hashing what the model reads (decoded pixels, the text), so a re-encoded or renamed copy
is found too; near twins by the nearest training neighbour in feature space (scikit-learn `NearestNeighbors`)
above `similarity` (cosine).
"""
import hashlib
from dataclasses import dataclass

import numpy as np

TRAINING = ("train", "validation")  # the splits a model learns or selects from; a test twin there is a leak


@dataclass
class Pair:
    """One duplicate or leak: (split, index) and its twin (other_split, other_index), with the cosine similarity
    (1.0 for identical content)."""

    split: str
    index: int
    other_split: str
    other_index: int
    similarity: float
    exact: bool

    @property
    def issue(self):
        return "leak" if self.split == "test" and self.other_split in TRAINING else "duplicate"


def content_hashes(dataset):
    """SHA-1 hex digest of each example's inputs (decoded, as the model reads them) of an unbatched dataset.

    Examples:
        >>> import tensorflow as tf
        >>> data = tf.data.Dataset.from_tensor_slices((tf.constant(["a", "b", "a"]), tf.constant([0, 1, 1])))
        >>> h = content_hashes(data)
        >>> h[0] == h[2], h[0] == h[1]
        (True, False)
    """
    import tensorflow as tf

    from tl_app.engine.datasets import without_autotune_thread

    hashes = []
    for inputs, _ in without_autotune_thread(dataset.batch(256).prefetch(tf.data.AUTOTUNE)):
        columns = [np.asarray(t.numpy()) for t in tf.nest.flatten(inputs)]
        for row in range(len(columns[0])):
            digest = hashlib.sha1()
            for column in columns:
                value = column[row]
                digest.update(value if isinstance(value, bytes) else np.ascontiguousarray(value).tobytes())
            hashes.append(digest.hexdigest())
    return hashes


def exact_pairs(hashes):
    """Pairs of identical content: each later example paired with the first of its kind, splits in the order
    given (`{split: [hash, ...]}`); a test example is paired with a training twin when there is one."""
    first, pairs = {}, []
    order = sorted(hashes, key=lambda s: (s == "test", s != "train"))  # train, validation, then test
    for split in order:
        for index, digest in enumerate(hashes[split]):
            if digest in first:
                other_split, other_index = first[digest]
                pairs.append(Pair(split, index, other_split, other_index, 1.0, True))
            else:
                first[digest] = (split, index)
    return pairs


def normalized(features):
    features = np.asarray(features, np.float32).reshape(len(features), -1)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def near_pairs(features, similarity, exact=()):
    """Pairs of distinct examples whose features' cosine similarity is >= `similarity`, exact pairs excepted.

    Each example of a split is compared with earlier examples of its own split and with every example of the
    splits before it (train, validation, test): each twin pair is reported once, from its later member.

    Args:
        features: `{split: (n, d) features}`.
        similarity: the cosine threshold (e.g. 0.99).
        exact: pairs already found by content (`exact_pairs`): not reported again.
    """
    from sklearn.neighbors import NearestNeighbors

    known = {(p.split, p.index) for p in exact}
    order = sorted(features, key=lambda s: (s == "test", s != "train"))
    pairs = []
    for position, split in enumerate(order):
        mine = normalized(features[split])
        for other in order[:position + 1]:
            theirs = normalized(features[other])
            if len(theirs) < 2 and other == split:
                continue
            k = min(2 if other == split else 1, len(theirs))
            neighbours = NearestNeighbors(n_neighbors=k).fit(theirs)
            distances, indices = neighbours.kneighbors(mine)
            column = k - 1 if other == split else 0  # within a split, the first neighbour is the example itself
            cosine = 1.0 - distances[:, column] ** 2 / 2.0  # unit vectors: |a - b|^2 = 2 - 2 cos
            for index in np.flatnonzero(cosine >= similarity):
                twin = int(indices[index, column])
                if (split, int(index)) in known or (other == split and twin >= index):
                    continue  # found by content, or reported from the later member
                known.add((split, int(index)))
                pairs.append(Pair(split, int(index), other, twin, float(min(cosine[index], 1.0)), False))
    return pairs
