"""`KerasApplicationBackbone`: a base built by `keras.applications` (no top, any size at or above its minimum)."""
import os
from dataclasses import dataclass, field
from typing import Any, Dict

from tl_app.image.backbones.backbone import Backbone


def keras_cache_file(name):
    """Where Keras keeps a downloaded weights file `name` (KERAS_HOME or ~/.keras, then models/)."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(keras_home, "models", name)


@dataclass
class KerasApplicationBackbone(Backbone):
    """A `keras.applications` constructor as a Backbone.

    Args:
        constructor: the name in `keras.applications` (e.g. "EfficientNetV2B0").
        kwargs: extra constructor arguments (e.g. `{"include_preprocessing": True}`).
        (the rest: as `Backbone`.)

    Examples:
        >>> from tl_app.image.backbones import get
        >>> get("resnet50_v2").build(64).output.shape[-1]
        2048
    """

    constructor: str = ""
    kwargs: Dict[str, Any] = field(default_factory=dict)

    def build(self, image_size, alpha=1.0, imagenet=False):
        import keras

        make = getattr(keras.applications, self.constructor)
        extra = dict(self.kwargs)
        if len(self.widths) > 1 or alpha != 1.0:
            extra["alpha"] = alpha
        return make(input_shape=(image_size, image_size, 3), include_top=False,
                    weights="imagenet" if imagenet else None, **extra)

    def imagenet_file(self, image_size, alpha=1.0):
        """The name of the no-top ImageNet file Keras downloads for this size and width."""
        return self.imagenet.name

    def imagenet_cached(self, image_size, alpha=1.0):
        """True when Keras already holds the ImageNet file (no download needed)."""
        return os.path.isfile(keras_cache_file(self.imagenet_file(image_size, alpha)))
