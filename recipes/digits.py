"""`digits`: scikit-learn's embedded 8x8 digits with the MLP (the default of `make run`: no download)."""
import numpy as np

from tl_app.data.arrays import splits_from_arrays
from tl_app.data.splits import seeded_split
from tl_app.errors import UserError
from tl_app.mlp import MLPClassifier, MLPConfig
from tl_app.registry import register

DIGIT_CLASSES = [str(d) for d in range(10)]


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
