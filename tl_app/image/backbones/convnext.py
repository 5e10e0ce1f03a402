"""ConvNeXt (Liu et al., 2022) from `keras.applications`: `convnext_tiny`.

The base normalises its 0..255 inputs itself (ImageNet mean and standard
deviation, `include_preprocessing`). ConvNeXt has LayerNorm, no
BatchNormalization. ImageNet weights: a Keras download (converted from
facebookresearch/ConvNeXt, MIT); no offline asset.
"""
from dataclasses import dataclass

from tl_app.image.backbones.backbone import ImageNetWeights
from tl_app.image.backbones.keras_application import KerasApplicationBackbone


@dataclass
class ConvNeXtBackbone(KerasApplicationBackbone):
    """ConvNeXt; blocks are `stage_S_block_B` and the downsampling layers between stages."""

    def preprocessing_layers(self):
        return []


CONVNEXT_TINY = ConvNeXtBackbone(
    name="convnext_tiny", architecture="ConvNeXt-Tiny", parameters=27_820_128, feature_size=768, native_size=224,
    preprocessing="ImageNet mean/std (inside the base)",
    imagenet=ImageNetWeights("keras", "convnext_tiny_notop.h5", "MIT (Keras applications, from facebookresearch/ConvNeXt)"),
    has_batchnorm=False, block_pattern=r"^convnext_tiny_(stage_\d+_block_\d+|downsampling_block_\d+)",
    constructor="ConvNeXtTiny", family="convnext")
