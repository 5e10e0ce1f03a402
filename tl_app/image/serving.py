"""Serving signatures of image classifiers: encoded bytes, and decoded images.

- `serving_default(image_bytes)`: tf.string [N], each a JPEG/PNG/BMP/GIF file's
  bytes (TF Serving REST: `{"b64": "..."}`). Decoding to RGB and resizing run
  in the graph with the training pipeline's own functions.
- `serving_images(images)`: float32 [N, H, W, 3] in 0..255, any H and W (the
  model resizes).

Both return `probabilities`, `class_id` and `class_name`.
"""
import numpy as np

from tl_app.export.signatures import classification_signature
from tl_app.image.data import decode_and_resize

BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
IMAGES_SIGNATURE = "serving_images"


def image_signatures(model, class_names, image_size):
    """`{"serving_default": bytes signature, "serving_images": float-image signature}`.

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

    return {
        "serving_default": classification_signature(
            model, class_names, tf.TensorSpec([None], tf.string, name=BYTES_INPUT), preprocess=decode_batch),
        IMAGES_SIGNATURE: classification_signature(
            model, class_names, tf.TensorSpec([None, None, None, 3], tf.float32, name=IMAGES_INPUT)),
    }


def encode_png(images):
    """A batch of images (any dtype, [N, H, W, 3], values 0..255) -> object array of N PNG files' bytes."""
    import tensorflow as tf

    pixels = np.clip(np.rint(np.asarray(images, dtype=np.float32)), 0, 255).astype(np.uint8)
    encoded = np.empty(len(pixels), dtype=object)
    encoded[:] = [tf.io.encode_png(image).numpy() for image in pixels]
    return encoded
