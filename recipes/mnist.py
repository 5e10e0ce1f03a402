"""`mnist` and `fashion_mnist`: 28x28 grayscale with the MLP, from tfds or the four idx files (`--data-dir`)."""
from tl_app.mlp import MLPClassifier, MLPConfig
from tl_app.mlp.data import idx_or_tfds_splits
from tl_app.registry import register

DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


@register("mnist")
class Mnist(MLPClassifier):
    """MNIST digits with the classic MLP (tfds `mnist`, or idx files via --data-dir)."""

    defaults = MLPConfig(epochs=5)

    def load_data(self):
        return idx_or_tfds_splits(self.config, "mnist", DIGIT_CLASSES)


@register("fashion_mnist")
class FashionMnist(MLPClassifier):
    """Fashion-MNIST with the MLP (tfds, or idx files via --data-dir, e.g. /usr/share/datasets/fashion-mnist)."""

    defaults = MLPConfig(epochs=5)

    def load_data(self):
        return idx_or_tfds_splits(self.config, "fashion_mnist", FASHION_MNIST_CLASSES)
