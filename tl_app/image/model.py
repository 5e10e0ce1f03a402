"""The image classifier: raw images in, class probabilities out, on any registered base.

    images [N, H, W, 3] float 0..255 (any H, W)
      -> Resizing(image_size)            same antialiased bilinear resize as the data pipeline
      -> the base's preprocessing        e.g. MobileNetV2's [0, 255] -> [-1, 1] (`Backbone.preprocessing_layers`;
                                         none for bases that preprocess inside, as EfficientNetV2)
      -> the base (include_top=False)    frozen; always called with training=False
      -> pooling                         global average (CNNs) or the class token (ViT): the features a
                                         feature cache stores
      -> [Dense(hidden_units, relu)]      only when hidden_units > 0 (`engine.heads`; 0 by default)
      -> Dropout -> Dense(num_classes, softmax (or sigmoid: multi_label), float32)

The base runs in inference mode even when its top is unfrozen, so its
BatchNormalization layers keep their ImageNet statistics (they are also kept
non-trainable, `image.unfreezing`): updating them on small batches of a new
data set ruins them.
"""
from dataclasses import dataclass
from typing import Any

RESIZE_NAME = "resize"  # its output is where `serving_resized_images` enters the model (image.serving)


@dataclass
class ImageClassifier:
    """The full model and the two views of it a feature cache needs (all sharing layers).

    Args:
        model: raw images -> probabilities.
        base: the pretrained base inside `model`.
        extractor: raw images -> pooled features (frozen part).
        head: pooled features -> probabilities (the trainable head).
    """

    model: Any
    base: Any
    extractor: Any
    head: Any


def base_layer_name(backbone_name):
    """The name of the base inside the classifier (`mobilenet_v2_base` for the default base, as before)."""
    return f"{backbone_name}_base"


def build_image_classifier(base, num_classes, image_size, dropout=0.2, regularizer=None, name="image_classifier",
                           backbone=None, activation="softmax", hidden_units=0):
    """Wrap a no-top base into the classifier described in the module docstring.

    Args:
        base: the no-top base for `image_size` inputs (`Backbone.build`).
        num_classes: size of the softmax.
        image_size: side of the square the base sees.
        dropout: rate of the Dropout before the Dense head.
        regularizer: of the head's kernels (`engine.regularizers.head_regularizer`), or None.
        name: the model's name.
        backbone: the `Backbone` the base was built from (preprocessing, pooling, name); None: the
            default base (`mobilenet_v2`).
        activation: of the head: "softmax" (one class per image) or "sigmoid" (label_mode=multi_label).
        hidden_units: width of a relu Dense layer between the features and the Dropout; 0 = none.
    """
    import keras
    from keras import layers

    from tl_app.engine.heads import apply_head, head_layers

    if backbone is None:
        from tl_app.image.backbones import DEFAULT, get

        backbone = get(DEFAULT)
    base.name = base_layer_name(backbone.name)
    base.trainable = False
    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    x = layers.Resizing(image_size, image_size, interpolation="bilinear", antialias=True, name=RESIZE_NAME)(inputs)
    for layer in backbone.preprocessing_layers():
        x = layer(x)
    x = base(x, training=False)
    # float32 under mixed precision too: these are the features a feature cache stores.
    features = backbone.pooling_layer()(x)
    head_chain = head_layers(num_classes, dropout, hidden_units, regularizer, activation)
    model = keras.Model(inputs, apply_head(head_chain, features), name=name)
    extractor = keras.Model(inputs, features, name=f"{name}_features")
    feature_input = keras.Input(shape=(features.shape[-1],), name="features")
    head = keras.Model(feature_input, apply_head(head_chain, feature_input), name=f"{name}_head")
    return ImageClassifier(model=model, base=base, extractor=extractor, head=head)
