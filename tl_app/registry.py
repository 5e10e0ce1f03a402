"""Recipe names -> recipe classes.

Built-in recipes register themselves when `tl_app.recipes` is imported; a
recipe is any `tl_app.recipe.Recipe` subclass decorated with `@register(name)`.
"""
import difflib

from tl_app.errors import UserError

_RECIPES = {}


def register(name):
    """Class decorator: make a Recipe subclass runnable as `tl-app run NAME`."""

    def decorate(cls):
        if name in _RECIPES and _RECIPES[name] is not cls:
            raise ValueError(f"recipe name {name!r} is registered twice")
        cls.name = name
        _RECIPES[name] = cls
        return cls

    return decorate


def _load_builtins():
    import tl_app.recipes  # noqa: F401  (registers the built-in recipes)


def names():
    _load_builtins()
    return sorted(_RECIPES)


def get(name):
    """The recipe class called `name`, or a UserError listing the known ones."""
    _load_builtins()
    if name in _RECIPES:
        return _RECIPES[name]
    known = ", ".join(sorted(_RECIPES))
    close = difflib.get_close_matches(name, list(_RECIPES), n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown recipe '{name}'.{hint} Known recipes: {known} (see `tl-app list`).")
