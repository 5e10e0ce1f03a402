"""Attention rollout (Abnar and Zuidema, ACL 2020) for image classifiers on a vision transformer base
(keras-hub's `ViTBackbone`, the `vit` backbones): which patches the class token, whose features the head
reads, has gathered its information from.

A ViT's output is tokens, not a feature map, so Grad-CAM has nothing to weigh. Rollout instead follows the
attention through the blocks: each block's attention, averaged over heads, is mixed half and half with the
identity (the residual connection carries the token itself on), its rows renormalized, and the blocks'
matrices multiplied from the first to the last; the class token's row over the patches, laid out on the
patch grid, scaled to [0, 1] and resized to the input, is the heat map. It says where the model looked, not
for which class: the same map explains every class (unlike Grad-CAM's).

The blocks are called one by one here (layer norm -> attention, asked for its scores -> residual -> layer
norm -> MLP -> residual, as keras-hub's `ViTEncoderBlock.call`), and the result is checked against the base's
own output, so a change in keras-hub's block is an error rather than a wrong picture.
"""
import numpy as np

from tl_app.errors import UserError


def transformer_base(model):
    """The keras-hub `ViTBackbone` inside `model`, or None (a convolutional base)."""
    from keras_hub.models import ViTBackbone

    return next((layer for layer in model.layers if isinstance(layer, ViTBackbone)), None)


def _rollout(base, images):
    """(the class token's rollout over the patches [N, patches], the tokens the blocks gave)."""
    import tensorflow as tf

    tokens = base.get_layer("vit_patching_and_embedding")(images)
    encoder = base.get_layer("vit_encoder")
    count = tokens.shape[1]
    identity = tf.eye(count, dtype=tf.float32)
    rollout = tf.broadcast_to(identity, (tf.shape(tokens)[0], count, count))
    for block in encoder.encoder_layers:
        x = block.layer_norm_1(tokens)
        attended, scores = block.mha(x, x, return_attention_scores=True, training=False)
        tokens = tokens + attended
        tokens = tokens + block.mlp(block.layer_norm_2(tokens), training=False)
        mixed = 0.5 * tf.reduce_mean(tf.cast(scores, tf.float32), axis=1) + 0.5 * identity
        mixed = mixed / tf.reduce_sum(mixed, axis=-1, keepdims=True)
        rollout = tf.matmul(mixed, rollout)
    return rollout[:, 0, 1:], encoder.layer_norm(tokens)


def attention_rollout(model, images):
    """Heat maps (N, H, W) in [0, 1] over `images` (N, H, W, 3, float 0..255) from the attention of the model's
    transformer base.

    Args:
        model: an image classifier on a `vit` base (`image.model.build_image_classifier`'s `model`).
        images: a batch of raw images as the model takes them.

    Raises:
        UserError: the model has no transformer base.

    Examples:
        >>> import keras, keras_hub
        >>> base = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2,
        ...                                     hidden_dim=8, mlp_dim=16)
        >>> inputs = keras.Input((32, 32, 3))
        >>> tokens = base(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(tokens[:, 0]))
        >>> maps = attention_rollout(model, np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)))
        >>> maps.shape, bool(maps.min() >= 0 and maps.max() <= 1)
        ((2, 32, 32), True)
    """
    import tensorflow as tf

    base = transformer_base(model)
    if base is None:
        raise UserError(f"{model.name}: no vision transformer base to roll attention out of.")
    images = tf.convert_to_tensor(np.asarray(images, np.float32))
    x = images
    for layer in model.layers:  # resize and preprocessing, as the classifier feeds its base
        if layer is base:
            break
        if type(layer).__name__ != "InputLayer":
            x = layer(x, training=False)
    relevance, tokens = _rollout(base, x)
    if not np.allclose(np.asarray(tokens, np.float32), np.asarray(base(x, training=False), np.float32), atol=1e-3):
        raise ValueError(f"{base.name}: its blocks called one by one differ from the base; attention rollout "
                         "follows keras-hub's ViTEncoderBlock, which has changed")
    patch = base.get_layer("vit_patching_and_embedding").patch_size
    patch = (patch, patch) if isinstance(patch, int) else tuple(patch)
    grid = (int(x.shape[1]) // patch[0], int(x.shape[2]) // patch[1])
    maps = tf.reshape(relevance, (-1, *grid))
    low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
    maps = (maps - low) / (tf.reduce_max(maps, axis=(1, 2), keepdims=True) - low + 1e-9)
    maps = tf.image.resize(maps[..., None], images.shape[1:3], method="bilinear")[..., 0]
    return np.clip(maps.numpy(), 0.0, 1.0)
