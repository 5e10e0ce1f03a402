"""EfficientNetV2 (Tan and Le, 2021) from `keras.applications`: `efficientnet_v2_b0` .. `_b3`, `efficientnet_v2_s`.

The bases rescale (and for B0-B3 normalise) their 0..255 inputs themselves
(`include_preprocessing`), so the model adds nothing before them. ImageNet
weights are a Keras download (converted from the authors' TensorFlow release,
Apache-2.0); no offline asset exists here, so offline they build with
`weights=none` or a weights file.
"""
from dataclasses import dataclass

from tl_app.image.backbones.backbone import ImageNetWeights
from tl_app.image.backbones.keras_application import KerasApplicationBackbone

LICENCE = "Apache-2.0 (Keras applications, converted from the authors' TensorFlow release)"


@dataclass
class EfficientNetV2Backbone(KerasApplicationBackbone):
    """An EfficientNetV2 variant; blocks are `block1a`, `block1b`, ... (one inverted residual each)."""

    def imagenet_file(self, image_size, alpha=1.0):
        return f"efficientnetv2-{self.name.rsplit('_', 1)[1]}_notop.h5"

    def preprocessing_layers(self):
        return []


def _variant(suffix, constructor, parameters, features, native):
    return EfficientNetV2Backbone(
        name=f"efficientnet_v2_{suffix}", architecture=f"EfficientNetV2-{suffix.upper()}", parameters=parameters,
        feature_size=features, native_size=native, preprocessing="x / 255, ImageNet mean/std (inside the base)"
        if suffix.startswith("b") else "x / 128 - 1 (inside the base)",
        imagenet=ImageNetWeights("keras", "", LICENCE), block_pattern=r"^(block\d+[a-z]+|top)_",
        constructor=constructor, family="efficientnet_v2")


EFFICIENTNET_V2_B0 = _variant("b0", "EfficientNetV2B0", 5_919_312, 1280, 224)
EFFICIENTNET_V2_B1 = _variant("b1", "EfficientNetV2B1", 6_931_124, 1280, 240)
EFFICIENTNET_V2_B2 = _variant("b2", "EfficientNetV2B2", 8_769_374, 1408, 260)
EFFICIENTNET_V2_B3 = _variant("b3", "EfficientNetV2B3", 12_930_622, 1536, 300)
EFFICIENTNET_V2_S = _variant("s", "EfficientNetV2S", 20_331_360, 1280, 384)
