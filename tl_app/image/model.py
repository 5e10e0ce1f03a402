"""The MobileNetV2 image classifier: raw images in, class probabilities out.

    images [N, H, W, 3] float 0..255 (any H, W)
      -> Resizing(image_size)            same antialiased bilinear resize as the data pipeline
      -> Rescaling(1/127.5, offset=-1)   MobileNetV2's preprocess_input: [0, 255] -> [-1, 1]
      -> MobileNetV2(include_top=False)  frozen; always called with training=False
      -> GlobalAveragePooling2D          the features a feature cache stores
      -> Dropout -> Dense(num_classes, softmax, float32)

The base runs in inference mode even when its top is unfrozen, so its
BatchNormalization layers keep their ImageNet statistics (they are also kept
non-trainable, `image.unfreezing`): updating them on small batches of a new
data set ruins them.
"""
from dataclasses import dataclass
from typing import Any

BASE_NAME = "mobilenet_v2_base"
RESIZE_NAME = "resize"  # its output is where `serving_resized_images` enters the model (image.serving)


@dataclass
class ImageClassifier:
    """The full model and the two views of it a feature cache needs (all sharing layers).

    Args:
        model: raw images -> probabilities.
        base: the MobileNetV2 sub-model inside `model`.
        extractor: raw images -> pooled features (frozen part).
        head: pooled features -> probabilities (the trainable head).
    """

    model: Any
    base: Any
    extractor: Any
    head: Any


def build_image_classifier(base, num_classes, image_size, dropout=0.2, regularizer=None, name="image_classifier"):
    """Wrap a no-top base into the classifier described in the module docstring.

    Args:
        base: a no-top `keras.applications.MobileNetV2` for `image_size` inputs.
        num_classes: size of the softmax.
        image_size: side of the square the base sees.
        dropout: rate of the Dropout before the Dense head.
        regularizer: of the head's kernel (`engine.regularizers.head_regularizer`), or None.
        name: the model's name.
    """
    import keras
    from keras import layers

    base.name = BASE_NAME
    base.trainable = False
    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    x = layers.Resizing(image_size, image_size, interpolation="bilinear", antialias=True, name=RESIZE_NAME)(inputs)
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="mobilenet_v2_preprocess")(x)
    x = base(x, training=False)
    # float32 under mixed precision too: these are the features a feature cache stores.
    features = layers.GlobalAveragePooling2D(dtype="float32", name="pool")(x)
    head_dropout = layers.Dropout(dropout, name="head_dropout")
    classify = layers.Dense(num_classes, activation="softmax", dtype="float32", kernel_regularizer=regularizer,
                            name="probabilities")
    model = keras.Model(inputs, classify(head_dropout(features)), name=name)
    extractor = keras.Model(inputs, features, name=f"{name}_features")
    feature_input = keras.Input(shape=(features.shape[-1],), name="features")
    head = keras.Model(feature_input, classify(head_dropout(feature_input)), name=f"{name}_head")
    return ImageClassifier(model=model, base=base, extractor=extractor, head=head)
