"""MNIST-style data for the MLP family: 28x28 grayscale from idx files (`--data-dir`) or from tfds."""
import numpy as np

from tl_app.data.arrays import splits_from_arrays
from tl_app.recipe import DataSplits


def idx_or_tfds_splits(cfg, tfds_name, class_names):
    """DataSplits of float32 [28, 28] pixels in 0..255: the idx files of `cfg.data_dir`, else tfds `tfds_name`.

    Args:
        cfg: the recipe's config (data_dir, tfds_data_dir, validation_fraction, seed).
        tfds_name: the tfds data set, e.g. "mnist".
        class_names: the names when the idx files are read (they hold labels only).
    """
    if cfg.data_dir:
        from tl_app.mlp.idx import load_idx_dir

        train, test = load_idx_dir(cfg.data_dir)
        as_float = lambda pair: (pair[0].astype(np.float32), pair[1])  # noqa: E731
        return splits_from_arrays(as_float(train), as_float(test), class_names,
                                  validation_fraction=cfg.validation_fraction, seed=cfg.seed)
    return _tfds_splits(cfg, tfds_name, class_names)


def _tfds_splits(cfg, tfds_name, class_names):
    import tensorflow as tf

    from tl_app.data.tfds_source import load_tfds, train_validation_test

    datasets, info = load_tfds(
        tfds_name,
        train_validation_test(cfg.validation_fraction),
        data_dir=cfg.tfds_data_dir,
        offline_hint="Run once online, or pass --data-dir DIR holding the four idx files (train-images-idx3-ubyte.gz, ...).",
    )

    def to_pixels(image, label):  # [28, 28, 1] uint8 -> [28, 28] float32, as the idx path gives
        return tf.cast(tf.squeeze(image, -1), tf.float32), label

    ready = {k: ds.map(to_pixels, num_parallel_calls=tf.data.AUTOTUNE).cache() for k, ds in datasets.items()}
    names = info.features["label"].names if "label" in info.features else class_names
    return DataSplits(train=ready["train"], validation=ready["validation"], test=ready["test"], class_names=list(names))
