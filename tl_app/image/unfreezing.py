"""Which layers of a MobileNetV2 base train: freezing, unfreezing from a layer, block-wise gradual stages.

BatchNormalization layers stay frozen (and the base runs in inference mode)
whatever is unfrozen: their ImageNet statistics would be ruined by small batches.
"""
import re
from typing import List

from tl_app.errors import UserError


def _block_of(layer_name):
    """The MobileNetV2 block a layer belongs to: 'stem', 'block_0' .. 'block_16', or 'top'."""
    match = re.match(r"block_(\d+)_", layer_name)
    if match:
        return f"block_{match.group(1)}"
    if layer_name.startswith("expanded_conv"):
        return "block_0"
    if layer_name.startswith(("Conv_1", "out_relu")):
        return "top"
    return "stem"


def block_starts(base):
    """Indices into `base.layers` where a new block begins (ascending)."""
    starts, previous = [], None
    for index, layer in enumerate(base.layers):
        block = _block_of(layer.name)
        if block != previous:
            starts.append(index)
            previous = block
    return starts


def default_fine_tune_at(base, top_fraction=0.3):
    """First layer of the top `top_fraction` of the base, moved down to its block's start."""
    target = int(round(len(base.layers) * (1.0 - top_fraction)))
    return max(s for s in block_starts(base) if s <= target)


def check_fine_tune_at(base, fine_tune_at):
    if not 0 <= fine_tune_at < len(base.layers):
        raise UserError(f"--set fine_tune_at={fine_tune_at}: the base has {len(base.layers)} layers;"
                        f" choose 0..{len(base.layers) - 1} (or none for the top ~30%).")
    return fine_tune_at


def unfreeze_from(base, index):
    """Make layers `index`.. of the base trainable, except BatchNormalization (kept frozen)."""
    from keras import layers

    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= index and not isinstance(layer, layers.BatchNormalization)


def freeze(base):
    base.trainable = False


def gradual_stages(base, fine_tune_at):
    """Unfreeze points for gradual unfreezing: one more block each stage, top first, down to `fine_tune_at`."""
    above = sorted((s for s in block_starts(base) if s > fine_tune_at), reverse=True)
    return above + [fine_tune_at]


def describe_layer(base, index):
    return f"layer {index} ({base.layers[index].name}) of {len(base.layers)}"


def split_epochs(total, per_stage):
    """[per_stage, per_stage, ..., remainder] summing to `total`."""
    sizes: List[int] = []
    while total > 0:
        sizes.append(min(per_stage, total))
        total -= sizes[-1]
    return sizes
