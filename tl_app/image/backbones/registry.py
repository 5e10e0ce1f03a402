"""Backbone names -> `Backbone`s, from the entry-point group `tl_app.backbones` and from code.

tl_app's own `setup.py` declares the built-in backbones in the group
(`name = module:OBJECT`, a `Backbone` instance), exactly as another package
adds its own; `register_backbone` adds one from code. A backbone whose entry
point fails to import is a warning naming its package; the others still work.
"""
import difflib

from tl_app.errors import UserError
from tl_app.registry import loaded_entry_points

ENTRY_POINT_GROUP = "tl_app.backbones"
DEFAULT = "mobilenet_v2"
_BACKBONES = {}
_LOADED = []


def register_backbone(backbone):
    """Make `backbone` (a `Backbone`) available as `--set base=<its name>`; returns it.

    Args:
        backbone: a `tl_app.image.backbones.Backbone` instance.

    Examples:
        >>> from tl_app.image.backbones import Backbone, register_backbone
        >>> class Tiny(Backbone):
        ...     def build(self, image_size, alpha=1.0, imagenet=False):
        ...         import keras
        ...         inputs = keras.Input((image_size, image_size, 3))
        ...         return keras.Model(inputs, keras.layers.Conv2D(4, 3, name="block1_conv")(inputs))
        >>> register_backbone(Tiny("tiny_conv", "one convolution", 112, 4, 32)).name
        'tiny_conv'
    """
    _BACKBONES[backbone.name] = backbone
    return backbone


def _load_entry_points():
    if _LOADED:
        return
    _LOADED.append(True)
    def is_backbone(entry, backbone):
        return getattr(backbone, "name", None) == entry.name

    for entry, _, backbone in loaded_entry_points(ENTRY_POINT_GROUP, "backbone", is_backbone, "a Backbone of that name"):
        _BACKBONES.setdefault(entry.name, backbone)  # one registered in code keeps its name


def all_backbones():
    """{name: Backbone} of every known image base, in registration order."""
    _load_entry_points()
    return dict(_BACKBONES)


def names():
    return sorted(all_backbones())


def get(name):
    """The Backbone called `name`, or a UserError naming the close ones and `tl-app bases`."""
    known = all_backbones()
    key = (name or "").strip()
    if key in known:
        return known[key]
    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"--set base={name}: unknown image base.{hint} Known: {', '.join(sorted(known))}"
                    " (`tl-app bases` describes each).")
