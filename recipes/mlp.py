"""The MNIST MLP family: `mnist`, `fashion_mnist` and the embedded `digits`.

Flatten -> Dense(128, relu) -> Dropout -> Dense(10, softmax), Adam, sparse
categorical cross-entropy. Pixel scaling is the model's first layer, so the
export takes raw pixel values ([N, 28, 28] in 0..255; [N, 8, 8] in 0..16 for digits).
"""
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from tl_app.config import RecipeConfig
from tl_app.errors import UserError
from tl_app.data.arrays import seeded_split, splits_from_arrays
from tl_app.recipe import DataSplits, Recipe
from tl_app.registry import register

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DIGIT_CLASSES = [str(d) for d in range(10)]


@dataclass
class MLPConfig(RecipeConfig):
    hidden_units: int = 128
    tfds_data_dir: Optional[str] = None  # where tfds keeps prepared data; None = its default


class MLPClassifier(Recipe):
    """Base of the MLP recipes: raw pixels -> Rescaling -> Flatten -> Dense -> Dropout -> softmax."""

    Config = MLPConfig
    serving_input_name = "pixels"
    pixel_max: ClassVar[float] = 255.0

    def build_model(self, data: DataSplits):
        import keras
        from keras import layers

        from tl_app.regularize import head_regularizer

        cfg = self.config
        regularizer = head_regularizer(cfg)  # --set l1=... / l2=...
        shape = tuple(data.train.element_spec[0].shape)
        inputs = keras.Input(shape=shape, dtype="float32", name="pixels")
        x = layers.Rescaling(1.0 / self.pixel_max, name="scale_pixels")(inputs)
        x = layers.Flatten()(x)
        x = layers.Dense(cfg.hidden_units, activation="relu", kernel_regularizer=regularizer)(x)
        x = layers.Dropout(cfg.dropout)(x)
        outputs = layers.Dense(len(data.class_names), activation="softmax", dtype="float32", name="probabilities",
                               kernel_regularizer=regularizer)(x)
        return keras.Model(inputs, outputs, name=f"{self.name}_mlp")


class IdxOrTfdsRecipe(MLPClassifier):
    """28x28 grayscale data from idx files (`--data-dir`) or from tfds."""

    tfds_name: ClassVar[str] = ""
    class_names: ClassVar[list] = DIGIT_CLASSES

    def load_data(self):
        cfg = self.config
        if cfg.data_dir:
            from tl_app.data.idx import load_idx_dir

            train, test = load_idx_dir(cfg.data_dir)
            as_float = lambda pair: (pair[0].astype(np.float32), pair[1])  # noqa: E731
            return splits_from_arrays(as_float(train), as_float(test), self.class_names,
                                      validation_fraction=cfg.validation_fraction, seed=cfg.seed)
        return self._load_tfds()

    def _load_tfds(self):
        import tensorflow as tf

        from tl_app.data.tfds_source import load_tfds, train_validation_test

        cfg = self.config
        datasets, info = load_tfds(
            self.tfds_name,
            train_validation_test(cfg.validation_fraction),
            data_dir=cfg.tfds_data_dir,
            offline_hint="Run once online, or pass --data-dir DIR holding the four idx files (train-images-idx3-ubyte.gz, ...).",
        )

        def to_pixels(image, label):  # [28, 28, 1] uint8 -> [28, 28] float32, as the idx path gives
            return tf.cast(tf.squeeze(image, -1), tf.float32), label

        ready = {k: ds.map(to_pixels, num_parallel_calls=tf.data.AUTOTUNE).cache() for k, ds in datasets.items()}
        names = info.features["label"].names if "label" in info.features else self.class_names
        return DataSplits(train=ready["train"], validation=ready["validation"], test=ready["test"], class_names=list(names))


@register("mnist")
class Mnist(IdxOrTfdsRecipe):
    """MNIST digits with the classic MLP (tfds `mnist`, or idx files via --data-dir)."""

    tfds_name = "mnist"
    defaults = MLPConfig(epochs=5)


@register("fashion_mnist")
class FashionMnist(IdxOrTfdsRecipe):
    """Fashion-MNIST with the MLP (tfds, or idx files via --data-dir, e.g. /usr/share/datasets/fashion-mnist)."""

    tfds_name = "fashion_mnist"
    class_names = FASHION_MNIST_CLASSES
    defaults = MLPConfig(epochs=5)


@register("digits")
class Digits(MLPClassifier):
    """scikit-learn's 8x8 digits with the MLP: embedded, always offline (the default of `make run`)."""

    pixel_max = 16.0
    defaults = MLPConfig(epochs=30)

    def load_data(self):
        from sklearn.datasets import load_digits

        cfg = self.config
        if cfg.data_dir:
            raise UserError(f"--data-dir {cfg.data_dir}: the digits recipe uses scikit-learn's embedded data and takes no --data-dir.")
        digits = load_digits()
        x, y = digits.images.astype(np.float32), digits.target.astype(np.int64)
        rest, test = seeded_split(len(x), (cfg.test_fraction,), cfg.seed)
        return splits_from_arrays((x[rest], y[rest]), (x[test], y[test]), DIGIT_CLASSES,
                                  validation_fraction=cfg.validation_fraction, seed=cfg.seed)
