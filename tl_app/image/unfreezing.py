"""Which units of a base train: freezing, unfreezing from a unit, block-wise gradual stages.

A unit is what the backbone says fine-tuning unfreezes one at a time
(`Backbone.units`: the base's layers for a CNN, the transformer blocks of a
ViT); its blocks come from `Backbone.block_of`. BatchNormalization layers stay
frozen (and the base runs in inference mode) whatever is unfrozen: their
ImageNet statistics would be ruined by small batches.
"""
from typing import List

from tl_app.errors import UserError


def top_fraction(backbone, fraction=None):
    """The share of the base that fine-tuning trains: `fraction`, or (None) the base's own default."""
    return backbone.fine_tune_fraction if fraction is None else fraction


def default_fine_tune_at(backbone, base, fraction=None):
    """First unit of the top `fraction` (default: `backbone.fine_tune_fraction`) of the base, moved down to its
    block's start."""
    units = backbone.units(base)
    target = int(round(len(units) * (1.0 - top_fraction(backbone, fraction))))
    return max(s for s in backbone.block_starts(base) if s <= target)


def check_fine_tune_at(backbone, base, fine_tune_at):
    count = len(backbone.units(base))
    if not 0 <= fine_tune_at < count:
        raise UserError(f"--set fine_tune_at={fine_tune_at}: the {backbone.name} base has {count} layers;"
                        f" choose 0..{count - 1} (or none for the top ~{backbone.fine_tune_fraction:.0%}).")
    return fine_tune_at


def unfreeze_from(backbone, base, index):
    """Make units `index`.. of the base trainable, except BatchNormalization (kept frozen)."""
    from keras import layers

    base.trainable = True
    for i, unit in enumerate(backbone.units(base)):
        unit.trainable = i >= index and not isinstance(unit, layers.BatchNormalization)


def freeze(base):
    base.trainable = False


def gradual_stages(backbone, base, fine_tune_at):
    """Unfreeze points for gradual unfreezing: one more block each stage, top first, down to `fine_tune_at`."""
    above = sorted((s for s in backbone.block_starts(base) if s > fine_tune_at), reverse=True)
    return above + [fine_tune_at]


def describe_layer(backbone, base, index):
    units = backbone.units(base)
    return f"layer {index} ({units[index].name}) of {len(units)}"


def split_epochs(total, per_stage):
    """[per_stage, per_stage, ..., remainder] summing to `total`."""
    sizes: List[int] = []
    while total > 0:
        sizes.append(min(per_stage, total))
        total -= sizes[-1]
    return sizes
