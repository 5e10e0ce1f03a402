"""`Backbone`: what the image family needs to know about one pretrained base.

A backbone says how to build itself without its top at any input size at or
above its minimum, how pixels in 0..255 become its input (layers inside the
model, so exports still take raw bytes), how its output becomes the feature
vector the head sees, which of its layers form blocks (for fine-tuning and
gradual unfreezing) and where its weights come from. One module per backbone
family (`mobilenet`, `efficientnet_lite`, ...) defines instances; the registry
(`image.backbones.registry`) finds them through the entry-point group
`tl_app.backbones`, as recipes and assets are found.
"""
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


@dataclass(frozen=True)
class ImageNetWeights:
    """Where `weights=imagenet` comes from, and under which licence its source publishes it.

    Args:
        source: "keras" (a `keras.applications` download, kept in ~/.keras/models) or "keras_hub" (a preset).
        name: the Keras cache file name of the no-top weights, or the keras-hub preset name.
        licence: the weights' licence as their source states it.
        native_only: the weights exist for the native input size only (a ViT's position embeddings).
    """

    source: str
    name: str
    licence: str
    native_only: bool = False


@dataclass
class Backbone:
    """One image base: build, preprocessing, features, blocks, weight sources.

    Subclasses implement `build`; the rest is data most families only fill in.

    Args:
        name: what `--set base=NAME` calls it.
        architecture: one line for tables and logs ("MobileNetV2, alpha 1.0").
        parameters: weights of the base without its top (at the native size).
        feature_size: length of the vector the head sees.
        native_size: the input side its ImageNet weights were trained at.
        min_size: the smallest input side it accepts.
        preprocessing: what happens to 0..255 pixels before the base, in words.
        imagenet: where `weights=imagenet` comes from, or None when nowhere.
        offline_asset: the `tl-app assets` name of weights prepared offline, or None.
        offline_licence: the licence of that asset's source package, said plainly when it states none.
        widths: width multipliers the family builds (MobileNets); others only 1.0.
        size_multiple: input sides must be a multiple of this (a ViT's patch size).
        has_batchnorm: BatchNormalization layers stay frozen and in inference mode when fine-tuning.
        fine_tune_fraction: the top fraction of the base fine-tuning unfreezes by default.
        block_pattern: regular expression whose first group names a layer's block; layers matching
            nothing belong to the block before them.

    Examples:
        >>> from tl_app.image.backbones import get
        >>> get("mobilenet_v2").feature_size
        1280
    """

    name: str
    architecture: str
    parameters: int
    feature_size: int
    native_size: int
    min_size: int = 32
    preprocessing: str = "x / 127.5 - 1"
    imagenet: Optional[ImageNetWeights] = None
    offline_asset: Optional[str] = None
    offline_licence: str = ""
    widths: Tuple[float, ...] = (1.0,)
    size_multiple: int = 1
    has_batchnorm: bool = True
    fine_tune_fraction: float = 0.3
    block_pattern: str = r"^(block\d+)"
    family: str = field(default="", compare=False)

    # ---- what a family implements -------------------------------------------------
    def build(self, image_size, alpha=1.0, imagenet=False):
        """The base without its top for `image_size` inputs: ImageNet weights when `imagenet`, else random ones.

        Weights from a file or an offline asset are loaded afterwards (`image.weights.load_weights_file`).
        """
        raise NotImplementedError(f"backbone {self.name} does not say how to build itself")

    def preprocessing_layers(self):
        """Keras layers taking float pixels in 0..255 to what the base expects (none when the base does it)."""
        from keras import layers

        return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name=f"{self.name}_preprocess")]

    def pooling_layer(self):
        """Base output -> feature vector; float32 under mixed precision (the features a feature cache stores)."""
        from keras import layers

        return layers.GlobalAveragePooling2D(dtype="float32", name="pool")

    # ---- blocks, for fine-tuning ----------------------------------------------------
    def units(self, base):
        """The base's layers in order, as fine-tuning unfreezes them (a family with nested blocks flattens them)."""
        return list(base.layers)

    def block_of(self, layer_name, previous):
        """The block `layer_name` belongs to; `previous` is the block of the layer before it."""
        match = re.match(self.block_pattern, layer_name)
        if match:
            return match.group(1)
        return previous if previous is not None else "stem"

    def block_starts(self, base):
        """Indices into `units(base)` where a new block begins (ascending)."""
        starts, previous = [], None
        for index, layer in enumerate(self.units(base)):
            block = self.block_of(layer.name, previous)
            if block != previous:
                starts.append(index)
                previous = block
        return starts

    # ---- checks ------------------------------------------------------------------
    def size_problem(self, image_size) -> Optional[str]:
        """Why `image_size` cannot be used with this base, or None."""
        if image_size < self.min_size:
            return f"{self.name} needs at least {self.min_size} px (native {self.native_size})"
        if image_size % self.size_multiple:
            return f"{self.name} needs a multiple of {self.size_multiple} px (e.g. {self.native_size})"
        return None

    def weight_sources(self) -> List[str]:
        """The `weights=` values this base can use, besides a file and `none`."""
        return (["imagenet"] if self.imagenet else []) + (["offline"] if self.offline_asset else [])
