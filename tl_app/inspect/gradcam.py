"""Grad-CAM (Selvaraju et al., ICCV 2017) for the image classifiers: where in the picture the predicted
class's evidence lies.

The classifier is a chain (resize -> preprocessing -> base -> pooling -> [hidden dense with hidden_units]
-> dropout -> dense, `image.model`), so the base's output, its last convolutional feature map, is reached by
calling the layers in order under one `GradientTape`: the class score's gradient, averaged over the map's
positions, weighs its channels; the weighted sum through a ReLU, scaled to [0, 1] and resized to the input,
is the heat map. A base whose output
is not a feature map (ViT's tokens) has none: `grad_cam` says so, and `inspect.attention_rollout` draws its
maps instead (`explained_examples(..., heat=attention_rollout)`).
"""
import numpy as np

from tl_app.errors import UserError


def _chain(model, images, tape):
    """(probabilities, last 4-D output of a layer with weights) of `model` called layer by layer, each such
    output watched by `tape`. Resizing and rescaling (no weights) give 4-D images, not feature maps: a ViT
    base, whose tokens are 3-D, leaves none."""
    x, feature_map = images, None
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        x = layer(x, training=False)
        if len(x.shape) == 4 and layer.weights:
            feature_map = x
            tape.watch(feature_map)
    return x, feature_map


def grad_cam(model, images, classes):
    """Heat maps (N, H, W) in [0, 1] of `classes` (one per image) over `images` (N, H, W, 3, float 0..255).

    Args:
        model: an image classifier (`image.model.build_image_classifier`'s `model`).
        images: a batch of raw images as the model takes them.
        classes: the class index explained for each image (e.g. the predicted or the suggested class).

    Examples:
        >>> import keras
        >>> inputs = keras.Input((8, 8, 3))
        >>> x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        >>> x = keras.layers.GlobalAveragePooling2D()(x)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        >>> maps = grad_cam(model, np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32"), [0, 1])
        >>> maps.shape, bool(maps.min() >= 0 and maps.max() <= 1)
        ((2, 8, 8), True)
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(np.asarray(images, np.float32))
    with tf.GradientTape() as tape:
        probabilities, feature_map = _chain(model, images, tape)
        if feature_map is None:
            raise UserError(f"{model.name}: its base gives no convolutional feature map (e.g. a ViT's tokens), so "
                            "Grad-CAM has nothing to weigh (inspect.attention_rollout explains a ViT's).")
        picked = tf.gather(probabilities, np.asarray(classes, np.int64), axis=1, batch_dims=1)
        score = tf.reduce_sum(tf.math.log(picked + 1e-7))
    expected = model(images, training=False)
    if not np.allclose(np.asarray(probabilities), np.asarray(expected), atol=1e-4):
        raise ValueError(f"{model.name} is not a chain of layers; Grad-CAM here walks the image classifier's")
    gradients = tape.gradient(score, feature_map)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(feature_map, weights.dtype), axis=-1))
    cam = cam / (tf.reduce_max(cam, axis=(1, 2), keepdims=True) + 1e-9)
    cam = tf.image.resize(cam[..., None], images.shape[1:3], method="bilinear")[..., 0]
    return np.clip(cam.numpy(), 0.0, 1.0)


def overlay(image, heat, alpha=0.45):
    """An RGB picture (0..255) of `image` with `heat` (H, W in [0, 1]) drawn over it in the jet colours."""
    from matplotlib import colormaps

    image = np.asarray(image, np.float32)
    image = image.reshape(image.shape[0], image.shape[1], -1)
    image = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
    scale = max(float(image.max()), 1.0)
    colours = colormaps["jet"](heat)[..., :3] * 255.0
    return (1 - alpha) * image / scale * 255.0 + alpha * colours


def explained_examples(model, datasets, picks, class_names, limit=4, heat=None):
    """PNG bytes of heat-map overlays (Grad-CAM unless `heat` says otherwise), or None when there are no picks.

    Args:
        model: the trained image classifier.
        datasets: `{split: unbatched (image, label) dataset}`.
        picks: `[(split, index, class explained, title)]`, e.g. the most confident test mistakes (their
            predicted class) and the top suspected label errors (their suggested class).
        class_names: index = label (for the titles' sake the callers already name classes).
        limit: overlays drawn at most.
        heat: `(model, images, classes) -> (N, H, W) maps in [0, 1]`; None: `grad_cam`.
    """
    from tl_app.evaluate.plots import examples_png
    from tl_app.evaluate.predictions import inputs_at

    picks = picks[:limit * 2]
    if not picks:
        return None
    images = np.stack(inputs_at(datasets, [(split, index) for split, index, _, _ in picks])).astype(np.float32)
    maps = (heat or grad_cam)(model, images, [c for _, _, c, _ in picks])
    pictures = [overlay(image, h) for image, h in zip(images, maps)]
    return examples_png(pictures, [title for *_, title in picks], [False] * len(picks), columns=min(4, len(picks)),
                        tile=128)
