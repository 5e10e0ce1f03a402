"""Serving signatures of image classifiers: encoded bytes, decoded images, and images at the model's size.

- `serving_default(image_bytes)`: tf.string [N], each a JPEG/PNG/BMP/GIF file's
  bytes (TF Serving REST: `{"b64": "..."}`). Decoding to RGB and resizing run
  in the graph with the training pipeline's own functions.
- `serving_images(images)`: float32 [N, H, W, 3] in 0..255, any H and W (the
  model resizes).
- `serving_resized_images(images)`: float32 [N, S, S, 3] in 0..255, already at
  the model's size S (`image_size`): the model after its resize layer. TFLite
  converts this one: its antialiased resize (`ScaleAndTranslate`) has no TFLite
  kernel, and a client that resized does not need it.

All return `probabilities`, `class_id` and `class_name`.
"""
import numpy as np

from tl_app.export.signatures import classification_signature
from tl_app.image.data import decode_and_resize

BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
IMAGES_SIGNATURE = "serving_images"
RESIZED_SIGNATURE = "serving_resized_images"


def after_resize(model):
    """The classifier from its resize layer's output on: [N, S, S, 3] pixels -> probabilities (shared layers)."""
    import keras

    from tl_app.image.model import RESIZE_NAME

    return keras.Model(model.get_layer(RESIZE_NAME).output, model.output, name=f"{model.name}_resized")


def image_signatures(model, class_names, image_size):
    """`{"serving_default": bytes, "serving_images": float images, "serving_resized_images": images at size}`
    (the last when the model has the family's resize layer, `image.model.RESIZE_NAME`).

    Args:
        model: raw float images (any size) -> probabilities.
        class_names: index -> name, for `class_name`.
        image_size: the side images are resized to after decoding (as in training).
    """
    import tensorflow as tf

    def decode_batch(encoded):
        # Images in a batch may differ in size: decode and resize each, then stack.
        return tf.map_fn(lambda one: decode_and_resize(one, image_size), encoded,
                         fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32))

    from tl_app.image.model import RESIZE_NAME

    signatures = {
        "serving_default": classification_signature(
            model, class_names, tf.TensorSpec([None], tf.string, name=BYTES_INPUT), preprocess=decode_batch),
        IMAGES_SIGNATURE: classification_signature(
            model, class_names, tf.TensorSpec([None, None, None, 3], tf.float32, name=IMAGES_INPUT)),
    }
    # A recipe's own build_model may have no resize layer of that name: its export has no TFLite entry point.
    if any(layer.name == RESIZE_NAME for layer in model.layers):
        signatures[RESIZED_SIGNATURE] = classification_signature(
            after_resize(model), class_names,
            tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=IMAGES_INPUT))
    return signatures


def encode_png(images):
    """A batch of images (any dtype, [N, H, W, 3], values 0..255) -> object array of N PNG files' bytes."""
    import tensorflow as tf

    pixels = np.clip(np.rint(np.asarray(images, dtype=np.float32)), 0, 255).astype(np.uint8)
    encoded = np.empty(len(pixels), dtype=object)
    encoded[:] = [tf.io.encode_png(image).numpy() for image in pixels]
    return encoded


def tflite_image_input(image_size):
    """The image family's `TFLiteInput`: `serving_resized_images`, [image_size, image_size, 3] pixels 0..255.

    Float models take float32 pixels; the int8 model takes the uint8 pixels as they are (its input
    quantization is pinned to 0..255: scale 1, zero point 0). The reference is `serving_images`, the
    whole model with its resize, on the same images.
    """
    from tl_app.export.tflite_input import TFLiteInput

    return TFLiteInput(
        RESIZED_SIGNATURE,
        client=(f"decode the image (JPEG/PNG) to RGB and resize it to {image_size}x{image_size} (bilinear,"
                " antialiased, as in training) outside the model: TFLite has no image decoders; pixels 0..255,"
                " not scaled (the model scales them)"),
        value_range=(0.0, 255.0),
        reference=IMAGES_SIGNATURE,
    )
