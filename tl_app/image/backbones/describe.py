"""What `tl-app bases` shows of the image bases: one row each, and the details of one.

Rows say what is true on this machine: whether each base's offline asset is
prepared, and which downloads exist for it. Nothing is built or downloaded
(parameters and feature sizes are the backbones' declared ones, which the
tests check against built models); TensorFlow is not imported.
"""
from tl_app.assets import all_assets, locate
from tl_app.image.backbones.registry import all_backbones, get


def _weights_here(backbone):
    """The weight sources of `backbone` as this machine has them, e.g. "offline (prepared); imagenet (download)"."""
    sources = []
    if backbone.offline_asset:
        prepared = locate(backbone.offline_asset)
        sources.append("offline (prepared)" if prepared else f"offline (not prepared: tl-app assets {backbone.offline_asset})")
    if backbone.imagenet:
        where = ("keras-hub preset " + backbone.imagenet.name if backbone.imagenet.source == "keras_hub"
                 else "Keras download")
        only = f", {backbone.native_size} px only" if backbone.imagenet.native_only else ""
        sources.append(f"imagenet ({where}{only})")
    return "; ".join(sources) or "none (weights=none or a weights file)"


def _licence(backbone):
    parts = []
    if backbone.offline_asset:
        parts.append(f"offline: {backbone.offline_licence or all_assets()[backbone.offline_asset].licence}")
    if backbone.imagenet:
        parts.append(f"imagenet: {backbone.imagenet.licence}")
    return "; ".join(parts) or "no pretrained weights here"


def _row(backbone):
    return {
        "name": backbone.name,
        "kind": "image",
        "architecture": backbone.architecture,
        "parameters": backbone.parameters,
        "input": f"{backbone.native_size} px native (min {backbone.min_size}"
                 + (f", multiple of {backbone.size_multiple}" if backbone.size_multiple > 1 else "") + ")",
        "preprocessing": backbone.preprocessing,
        "weights": _weights_here(backbone),
        "licence": _licence(backbone),
        "feature_size": backbone.feature_size,
        "servable": "yes",
    }


def _use(backbone):
    """A command line that works for this base here (weights it can get, a size its weights exist for)."""
    line = f"tl-app run image_folder --data-dir DIR --set base={backbone.name}"
    if backbone.offline_asset:
        line += " --set weights=offline"
    elif not backbone.imagenet:
        line += " --set weights=none (no pretrained weights here; or weights=PATH/TO/FILE.weights.h5)"
    if backbone.imagenet and backbone.imagenet.native_only and not backbone.offline_asset:
        line += f" --set image_size={backbone.native_size}"
    return line


def backbone_rows():
    """One dict per registered image base (keys as `text.encoders.encoder_rows`), by name."""
    return [_row(b) for _, b in sorted(all_backbones().items())]


def describe_backbone(name):
    """The row of base `name` plus its fine-tuning facts; a UserError naming close names if unknown."""
    backbone = get(name)
    row = _row(backbone)
    row.update({
        "family": backbone.family or "(a package's own)",
        "widths (alpha)": ", ".join(f"{w:g}" for w in backbone.widths),
        "fine-tuning": f"unfreezes the top {backbone.fine_tune_fraction:.0%} of its layers by default, from a block"
                       " start; gradual_unfreeze opens one more block at a time"
                       + ("; BatchNormalization stays frozen, in inference mode" if backbone.has_batchnorm else ""),
        "use": _use(backbone),
    })
    return row
