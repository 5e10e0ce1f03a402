"""Small Keras layers the backbones put between a base and the head."""
import keras


class ClassToken(keras.layers.Layer):
    """[N, 1 + patches, D] transformer tokens -> the class token [N, D], in float32 (what a feature cache stores)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, tokens):
        return keras.ops.cast(tokens[:, 0, :], self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
