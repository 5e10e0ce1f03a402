"""In-memory arrays -> seeded train/validation/test splits as tf.data datasets."""
import numpy as np

from tl_app.data.splits import seeded_split
from tl_app.recipe import DataSplits


SLICED_FROM = "_tl_app_sliced_from"  # the attribute holding the tensors a `tensor_slices` dataset was cut from


def tensor_slices(tensors):
    """`tf.data.Dataset.from_tensor_slices(tensors)` that remembers `tensors`, so `engine.datasets.batched` can
    shuffle and batch it by index (what Keras does for numpy arrays): the same order, without a per-element pipeline.

    Args:
        tensors: a nest of arrays sharing their first dimension, e.g. `(x, y)`.

    Examples:
        >>> import numpy as np
        >>> ds = tensor_slices((np.zeros((4, 2), "float32"), np.arange(4)))
        >>> sliced_from(ds)[1].tolist(), sliced_from(ds.take(2)) is None
        ([0, 1, 2, 3], True)
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    object.__setattr__(dataset, SLICED_FROM, tensors)  # a transformed dataset is a new object: it does not carry this
    return dataset


def sliced_from(dataset):
    """The tensors `dataset` was made from by `tensor_slices` (None for any other dataset)."""
    return getattr(dataset, SLICED_FROM, None)


def _dataset(x, y):
    return tensor_slices((x, y.astype(np.int64)))


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
