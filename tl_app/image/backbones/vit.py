"""Vision Transformer (Dosovitskiy et al., 2021) from keras-hub: `vit_b16` (ViT-B/16, 12 layers, 768 wide).

The features are the class token after the final LayerNorm. Its ImageNet
weights are keras-hub's preset `vit_base_patch16_224_imagenet` (a download,
Apache-2.0, for 224 px only: the position embeddings are learned per patch);
with `weights=none` or a weights file it builds at any multiple of 16 px.
Fine-tuning unfreezes whole transformer blocks from the top; it has
LayerNorm, no BatchNormalization.
"""
from dataclasses import dataclass

from tl_app.image.backbones.backbone import Backbone, ImageNetWeights

PRESET = "vit_base_patch16_224_imagenet"


@dataclass
class ViTBackbone(Backbone):
    """A keras-hub ViTBackbone of one size (patch, layers, heads, width, MLP width)."""

    patch_size: int = 16
    num_layers: int = 12
    num_heads: int = 12
    hidden_dim: int = 768
    mlp_dim: int = 3072

    def build(self, image_size, alpha=1.0, imagenet=False):
        import keras_hub

        shape = (image_size, image_size, 3)
        if imagenet:
            return keras_hub.models.ViTBackbone.from_preset(self.imagenet.name, image_shape=shape)
        return keras_hub.models.ViTBackbone(image_shape=shape, patch_size=self.patch_size, num_layers=self.num_layers,
                                            num_heads=self.num_heads, hidden_dim=self.hidden_dim, mlp_dim=self.mlp_dim)

    def pooling_layer(self):
        from tl_app.image.backbones.layers import ClassToken

        return ClassToken(name="pool")

    def units(self, base):
        """The patch embedding, each transformer block, then the final LayerNorm."""
        encoder = base.get_layer("vit_encoder")
        return [base.get_layer("vit_patching_and_embedding"), *encoder.encoder_layers, encoder.layer_norm]

    def block_of(self, layer_name, previous):
        return layer_name


VIT_B16 = ViTBackbone(
    name="vit_b16", architecture="ViT-B/16 (12 layers, 768 wide, 12 heads)", parameters=85_798_656, feature_size=768,
    native_size=224, min_size=32, imagenet=ImageNetWeights("keras_hub", PRESET, "Apache-2.0 (keras-hub preset)",
                                                           native_only=True),
    size_multiple=16, has_batchnorm=False, fine_tune_fraction=0.25, family="vit")
