"""Base weights: `imagenet`, a weights file, the `offline` asset, `none`, or `auto`, for any registered backbone.

`resolve_weights(spec, backbone, alpha, image_size)` turns the `weights`
config field into a `ResolvedWeights`, or stops with one line naming the
alternatives, in seconds (a short network probe instead of minutes of DNS).
`build_base(resolved, backbone, alpha, image_size)` builds the base and loads
them. Nothing falls back to random weights: those come only from `weights=none`.
"""
import os
import re
from dataclasses import dataclass
from typing import Optional

from tl_app.assets import all_assets, locate, require
from tl_app.errors import UserError
from tl_app.network import KAGGLE_HOST, host_reachable, kaggle_cached



@dataclass
class ResolvedWeights:
    """Which weights the base gets and what to tell the user.

    Args:
        keras_weights: "imagenet", a file path, or None (random initialisation).
        description: one truthful line for the run log.
        choice: the `weights=` value naming these weights, with `auto` resolved (recorded in the run's config).
    """

    keras_weights: Optional[str]
    description: str
    choice: str = ""


def _offline_bases():
    from tl_app.image.backbones import all_backbones

    return ", ".join(name for name, b in all_backbones().items() if b.offline_asset)


def _alternatives(backbone):
    offline = (f"--set weights=offline (after `tl-app assets {backbone.offline_asset}`), " if backbone.offline_asset
               else f"a base with offline weights (--set base=...: {_offline_bases()}), ")
    return f"use {offline}--set weights=PATH/TO/FILE.weights.h5, or --set weights=none (random weights, for tests only)"


def _hub_cached(preset):
    """True when kagglehub already holds keras-hub's preset `preset` (no download needed)."""
    import keras_hub

    return kaggle_cached((keras_hub.models.Backbone.presets.get(preset) or {}).get("kaggle_handle", ""))


def _imagenet(backbone, alpha, image_size):
    from tl_app.data.tfds_source import network_available

    source = backbone.imagenet
    if source is None:
        raise UserError(f"--set weights=imagenet: {backbone.name} has no ImageNet weights to download here;"
                        f" {_alternatives(backbone)}.")
    if alpha not in backbone.widths:
        raise UserError(f"--set alpha={alpha:g}: {backbone.name} is built with alpha {', '.join(map(str, backbone.widths))};"
                        " change alpha.")
    if source.native_only and image_size != backbone.native_size:
        raise UserError(f"--set image_size={image_size}: {backbone.name}'s ImageNet weights exist for"
                        f" {backbone.native_size} px only; set image_size={backbone.native_size} or {_alternatives(backbone)}.")
    if source.source == "keras_hub":
        if not _hub_cached(source.name) and not host_reachable(KAGGLE_HOST, 3.0):
            raise UserError(f"--set weights=imagenet: {backbone.name} needs keras-hub's preset {source.name}, which cannot"
                            f" be downloaded here (offline?); {_alternatives(backbone)}.")
        return ResolvedWeights("imagenet", f"ImageNet weights of {backbone.name}: keras-hub preset {source.name}"
                               f" ({source.licence})", "imagenet")
    # Keras's download host answers like the tfds one: a short probe instead of minutes of DNS waiting.
    if not backbone.imagenet_cached(image_size, alpha) and not network_available():
        raise UserError(f"--set weights=imagenet: {backbone.name}'s ImageNet weights need a download that cannot be"
                        f" reached (offline?); {_alternatives(backbone)}.")
    return ResolvedWeights("imagenet", f"ImageNet weights of {backbone.name} from Keras (alpha {alpha:g};"
                           f" {source.licence})", "imagenet")


def _offline(backbone, alpha):
    if not backbone.offline_asset:
        raise UserError(f"--set weights=offline: {backbone.name} has no offline asset; bases that have one:"
                        f" {_offline_bases()}. Or use weights=imagenet (online), a weights file, or weights=none.")
    if alpha != 1.0:
        raise UserError(f"--set weights=offline: the {backbone.name} asset is for alpha 1.0, not {alpha:g}; set alpha=1.0.")
    try:
        path = require(backbone.offline_asset)
    except UserError as exc:
        raise UserError(f"{exc} Alternatives: weights=imagenet (online), weights=PATH/TO/FILE.weights.h5.") from None
    description = all_assets()[backbone.offline_asset].description
    return ResolvedWeights(path, f"offline asset '{backbone.offline_asset}': {description} ({path})", "offline")


def _auto(backbone, alpha, image_size):
    """ImageNet when it can be had, else the prepared offline asset (said in the log), else a UserError."""
    try:
        return _imagenet(backbone, alpha, image_size)
    except UserError as exc:
        reason = str(exc)
    asset = backbone.offline_asset
    if asset and alpha == 1.0 and locate(asset):
        resolved = _offline(backbone, alpha)
        return ResolvedWeights(resolved.keras_weights, f"weights=auto, ImageNet unreachable -> {resolved.description}",
                               resolved.choice)
    offline = (f"its offline asset is not prepared (`tl-app assets {asset}`)" if asset and alpha == 1.0
               else "it has no offline asset for this width" if asset else "it has no offline asset")
    reason = reason.split("; use ", 1)[0].split(": ", 1)[-1].rstrip(".")  # the cause, without the alternatives
    raise UserError(f"--set weights=auto: {reason}, and {offline}. Bases with offline weights: {_offline_bases()};"
                    " or use --set weights=PATH/TO/FILE.weights.h5, or weights=none (random weights, for tests only).")


def resolve_weights(spec, backbone, alpha=1.0, image_size=224):
    """The base weights the `weights` config field asks for, or a UserError naming the alternatives.

    Args:
        spec: "imagenet", "offline", "none", "auto" (imagenet when it can be had, else the prepared
            offline asset), or a path to a weights file.
        backbone: the `tl_app.image.backbones.Backbone` the weights are for.
        alpha: the width multiplier (MobileNets; the weights must match it).
        image_size: the side of the base's input.
    """
    key = "auto" if spec is None else spec.strip()
    if not key:
        raise UserError("--set weights=: empty; choose auto (the default), imagenet, offline, none or a weights file"
                        " path (--set weights=PATH/TO/FILE.weights.h5).")
    if key.lower() == "none":
        return ResolvedWeights(None, "random initialisation (weights=none): expect poor accuracy", "none")
    if key.lower() == "imagenet":
        return _imagenet(backbone, alpha, image_size)
    if key.lower() == "offline":
        return _offline(backbone, alpha)
    if key.lower() == "auto":
        return _auto(backbone, alpha, image_size)
    path = os.path.expanduser(key)
    if not os.path.isfile(path):
        raise UserError(f"--set weights={spec}: no such file; {_alternatives(backbone)}.")
    return ResolvedWeights(path, f"weights from the file {path}", path)


def _mismatch(resolved, backbone, alpha, reason):
    """One line naming the first layer Keras could not load and why (shapes, variable counts)."""
    layer = re.search(r"<\w+ name=([^,>]+)|Layer '([^']+)'", reason)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", reason)
    counts = re.search(r"expected (\d+) variables, but received (\d+)", reason)
    if shapes:
        why = f"the base expects {shapes.group(1)}, the file has {shapes.group(2)}"
    elif counts:
        why = f"the base expects {counts.group(1)} variables, the file has {counts.group(2)}"
    else:
        why = (reason.strip().splitlines() or ["no detail"])[0][:160]
    where = f"layer '{layer.group(1) or layer.group(2)}' differs ({why})" if layer else why
    return UserError(f"--set weights={resolved.keras_weights}: does not match a no-top {backbone.name} (alpha {alpha:g}):"
                     f" {where}; use weights saved from this base, or {_alternatives(backbone)}.")


def load_weights_file(base, path, backbone, alpha=1.0):
    """Load a weights file into a built base; a file of another architecture is a UserError naming the layer."""
    import warnings

    resolved = ResolvedWeights(path, "")
    # Keras warns (instead of failing) when only part of a file matches; a partly random base is never acceptable.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            base.load_weights(path)
        except (ValueError, OSError, KeyError, TypeError) as exc:
            raise _mismatch(resolved, backbone, alpha, str(exc) or type(exc).__name__) from None
    partial = [str(w.message) for w in caught if "could not be loaded" in str(w.message)
               or "freshly-initialized" in str(w.message)]
    if partial:
        raise _mismatch(resolved, backbone, alpha, partial[0])
    return base


def build_base(resolved, backbone, alpha, image_size):
    """The backbone's no-top base with the resolved weights, or a UserError."""
    if resolved.keras_weights != "imagenet":
        base = backbone.build(image_size, alpha=alpha)
    else:
        try:  # the probe said the host answers; the download itself can still fail (HTTP, proxy, partial cache)
            base = backbone.build(image_size, alpha=alpha, imagenet=True)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed download reaches the user as one line
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            source = backbone.imagenet.name if backbone.imagenet and backbone.imagenet.name else "Keras' file"
            raise UserError(f"--set weights=imagenet: downloading {backbone.name}'s ImageNet weights ({source}) failed"
                            f" ({type(exc).__name__}: {text}); {_alternatives(backbone)}.") from None
    if resolved.keras_weights not in (None, "imagenet"):
        load_weights_file(base, resolved.keras_weights, backbone, alpha)
    return base
