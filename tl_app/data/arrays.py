"""In-memory arrays -> seeded train/validation/test splits as tf.data datasets."""
import numpy as np

from tl_app.data.splits import seeded_split
from tl_app.recipe import DataSplits


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
