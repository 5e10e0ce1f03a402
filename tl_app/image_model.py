"""The MobileNetV2 image classifier: model, augmentation and which base layers train.

    images [N, H, W, 3] float 0..255 (any H, W)
      -> Resizing(image_size)            same antialiased bilinear resize as the data pipeline
      -> Rescaling(1/127.5, offset=-1)   MobileNetV2's preprocess_input: [0, 255] -> [-1, 1]
      -> MobileNetV2(include_top=False)  frozen; always called with training=False
      -> GlobalAveragePooling2D          the features a feature cache stores
      -> Dropout -> Dense(num_classes, softmax, float32)

The base runs in inference mode even when its top is unfrozen, so its
BatchNormalization layers keep their ImageNet statistics (they are also kept
non-trainable): updating them on small batches of a new data set ruins them.
"""
import re
from dataclasses import dataclass
from typing import Any, List

from tl_app.errors import UserError

BASE_NAME = "mobilenet_v2_base"


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
        regularizer: of the head's kernel (`tl_app.regularize.head_regularizer`), or None.
        name: the model's name.
    """
    import keras
    from keras import layers

    base.name = BASE_NAME
    base.trainable = False
    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    x = layers.Resizing(image_size, image_size, interpolation="bilinear", antialias=True, name="resize")(inputs)
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


def augmentation_layers(flip="horizontal", rotation=0.0, zoom=0.1, translation=0.0, contrast=0.1):
    """Keras random layers for training-time augmentation; a 0 / "none" turns one off.

    Args:
        flip: "horizontal", "vertical", "horizontal_and_vertical" or "none".
        rotation: max rotation as a fraction of a full turn.
        zoom: max zoom in/out as a fraction of the size.
        translation: max shift as a fraction of height and width.
        contrast: max contrast change factor (inputs in 0..255).
    """
    from keras import layers

    chosen = []
    if flip and flip != "none":
        if flip not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise UserError(f"--set flip={flip}: expected horizontal, vertical, horizontal_and_vertical or none.")
        chosen.append(layers.RandomFlip(flip))
    if rotation:
        chosen.append(layers.RandomRotation(rotation, fill_mode="reflect"))
    if zoom:
        chosen.append(layers.RandomZoom(zoom, fill_mode="reflect"))
    if translation:
        chosen.append(layers.RandomTranslation(translation, translation, fill_mode="reflect"))
    if contrast:
        chosen.append(layers.RandomContrast(contrast, value_range=(0, 255)))
    return chosen


def augment_batches(batched_dataset, random_layers):
    """Apply `random_layers` to the images of a batched `(images, labels)` dataset, in parallel.

    On batches rather than single images: measured on this 2-core CPU at 96 px,
    batch 32, about 1.0-1.9x the throughput of a per-image map.
    """
    import tensorflow as tf

    if not random_layers:
        return batched_dataset

    def apply(images, labels):
        for layer in random_layers:
            images = layer(images, training=True)
        return images, labels

    return batched_dataset.map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _block_of(layer_name):
    """The MobileNetV2 block a layer belongs to: 'stem', 'block_0' .. 'block_16', or 'top'."""
    match = re.match(r"block_(\d+)_", layer_name)
    if match:
        return f"block_{match.group(1)}"
    if layer_name.startswith("expanded_conv"):
        return "block_0"
    if layer_name.startswith(("Conv_1", "out_relu")):
        return "top"
    return "stem"


def block_starts(base):
    """Indices into `base.layers` where a new block begins (ascending)."""
    starts, previous = [], None
    for index, layer in enumerate(base.layers):
        block = _block_of(layer.name)
        if block != previous:
            starts.append(index)
            previous = block
    return starts


def default_fine_tune_at(base, top_fraction=0.3):
    """First layer of the top `top_fraction` of the base, moved down to its block's start."""
    target = int(round(len(base.layers) * (1.0 - top_fraction)))
    return max(s for s in block_starts(base) if s <= target)


def check_fine_tune_at(base, fine_tune_at):
    if not 0 <= fine_tune_at < len(base.layers):
        raise UserError(f"--set fine_tune_at={fine_tune_at}: the base has {len(base.layers)} layers;"
                        f" choose 0..{len(base.layers) - 1} (or none for the top ~30%).")
    return fine_tune_at


def unfreeze_from(base, index):
    """Make layers `index`.. of the base trainable, except BatchNormalization (kept frozen)."""
    from keras import layers

    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= index and not isinstance(layer, layers.BatchNormalization)


def freeze(base):
    base.trainable = False


def gradual_stages(base, fine_tune_at):
    """Unfreeze points for gradual unfreezing: one more block each stage, top first, down to `fine_tune_at`."""
    above = sorted((s for s in block_starts(base) if s > fine_tune_at), reverse=True)
    return above + [fine_tune_at]


def describe_layer(base, index):
    return f"layer {index} ({base.layers[index].name}) of {len(base.layers)}"


def split_epochs(total, per_stage):
    """[per_stage, per_stage, ..., remainder] summing to `total`."""
    sizes: List[int] = []
    while total > 0:
        sizes.append(min(per_stage, total))
        total -= sizes[-1]
    return sizes
