"""The MLP family's base class: raw pixels -> Rescaling -> Flatten -> Dense -> Dropout -> softmax.

Adam, sparse categorical cross-entropy. Pixel scaling is the model's first
layer, so the export takes raw pixel values (float32 [N, H, W] in 0..pixel_max).
"""
from typing import ClassVar

from tl_app.mlp.config import MLPConfig
from tl_app.recipe import DataSplits, Recipe


class MLPClassifier(Recipe):
    """Base of the MLP recipes: a small dense network on raw pixel values.

    Subclasses implement `load_data()` returning unbatched `(float32 [H, W] pixels, int64 label)`
    DataSplits, and set `pixel_max` (the largest pixel value) when it is not 255.

    Args:
        config: an `MLPConfig`; None means the recipe's defaults.

    Examples:
        >>> from tl_app.mlp import MLPClassifier, MLPConfig
        >>> class Tiles(MLPClassifier):
        ...     '''4x4 tiles, values 0..1.'''
        ...     pixel_max = 1.0
        ...     defaults = MLPConfig(epochs=10, hidden_units=16)
        >>> Tiles().config.hidden_units
        16
    """

    Config = MLPConfig
    precision_workload = "mlp"  # mixed_precision=auto: see tl_app.engine.precision
    serving_input_name = "pixels"
    pixel_max: ClassVar[float] = 255.0

    def search_space(self):
        """The common fields and the hidden layer's width."""
        return {**super().search_space(), "hidden_units": {"type": "Choice", "values": [32, 64, 128, 256]}}

    def check_config(self):
        """The MLP's hidden layer cannot be left out (the image and text heads take hidden_units=0 as none)."""
        from tl_app.errors import UserError

        if self.config.hidden_units < 1:
            raise UserError(f"--set hidden_units={self.config.hidden_units}: the MLP needs a hidden layer of 1 unit or"
                            " more (e.g. 128).", key="hidden_units")

    def build_model(self, data: DataSplits):
        import keras
        from keras import layers

        from tl_app.engine.regularizers import head_regularizer

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

    def tflite_input(self, export_dir):
        """`serving_default` on raw pixels 0..pixel_max (int8: uint8 in, scale and zero point in input.json)."""
        from tl_app.export.tflite_input import TFLiteInput

        return TFLiteInput("serving_default", value_range=(0.0, float(self.pixel_max)),
                           client=f"pixels as they are, 0..{self.pixel_max:g} (the model scales them)")
