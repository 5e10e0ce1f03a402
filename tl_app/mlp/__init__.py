"""The MLP family: a small dense network on raw pixels (the MNIST classic, and scikit-learn's digits).

- `classification.MLPClassifier`: the family's base class; a recipe implements `load_data()`.
- `config.MLPConfig`: its config fields.
- `data`: MNIST-style 28x28 data from idx files or tfds; `idx`: the idx file reader.

Importing this package imports no TensorFlow.
"""
from tl_app.mlp.classification import MLPClassifier
from tl_app.mlp.config import MLPConfig

__all__ = ["MLPClassifier", "MLPConfig"]
