"""In-memory arrays -> seeded train/validation/test splits as tf.data datasets."""
import numpy as np

from tl_app.recipe import DataSplits


def seeded_split(n, fractions, seed):
    """Index arrays for consecutive fractions of a seeded permutation of range(n).

    `fractions` are the shares of all but the first part, e.g. (0.2,) -> [80%, 20%].
    """
    order = np.random.default_rng(seed).permutation(n)
    parts, start = [], 0
    sizes = [int(round(n * f)) for f in fractions]
    first = n - sum(sizes)
    for size in [first] + sizes:
        parts.append(order[start : start + size])
        start += size
    return parts


def _dataset(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))


def splits_from_arrays(train, test, class_names, validation=None, validation_fraction=0.1, seed=42):
    """DataSplits from `(x, y)` numpy pairs; validation carved from train when not given."""
    x_train, y_train = train
    if validation is None:
        keep, held = seeded_split(len(x_train), (validation_fraction,), seed)
        validation = (x_train[held], y_train[held])
        x_train, y_train = x_train[keep], y_train[keep]
    return DataSplits(
        train=_dataset(x_train, y_train),
        validation=_dataset(*validation),
        test=_dataset(*test),
        class_names=list(class_names),
    )
