"""Recipe names -> recipe classes, and where each one comes from.

Recipes reach the registry three ways:

- **entry points** in the group `tl_app.recipes` (`name = module:Class`): the
  built-in recipes (tl_app's own `setup.py` declares them) and recipes of any
  installed package that declares the group. The registry imports them only
  through this group, never `tl_app.recipes` by name, so any package adds
  recipes exactly as tl_app does;
- **`@register(name)`** on a Recipe subclass in code the process imported;
- **recipe files** named on the command line (`tl-app run my_recipe.py`, see
  `tl_app.recipe_files`).

A name given twice (to different classes) is an error naming both sources; an
entry point that fails to import is a warning naming its package, and the
other recipes still list and run.
"""
import difflib
import functools
import importlib.metadata
from dataclasses import dataclass

from tl_app import log
from tl_app.errors import UserError

ENTRY_POINT_GROUP = "tl_app.recipes"
DISTRIBUTION = "tl_app"  # this package's own distribution: its entry points are the built-in recipes


@dataclass(frozen=True)
class Source:
    """Where a recipe comes from.

    Args:
        kind: "built-in", "package", "file" or "module".
        detail: the package's name, the file's path or the module's name ("" for built-ins).
    """

    kind: str
    detail: str = ""

    def __str__(self):
        return self.kind if not self.detail else f"{self.kind} {self.detail}"


BUILT_IN = Source("built-in")
_DECORATED = {}  # class -> name, in registration order
_SOURCES = {}  # class -> Source, for classes whose source is known better than their module (files)


def register(name):
    """Class decorator: make a Recipe subclass runnable as `tl-app run NAME`.

    Args:
        name: the recipe's name (also its directory under runs/ and saved_models/).

    Examples:
        >>> from tl_app.mlp import MLPClassifier
        >>> @register("my_digits")
        ... class MyDigits(MLPClassifier):
        ...     '''Digits, my way.'''
        >>> MyDigits.name
        'my_digits'
    """

    def decorate(cls):
        cls.name = name
        _DECORATED[cls] = name
        return cls

    return decorate


def set_source(cls, source):
    """Record where `cls` was loaded from (recipe files do; it shows in `tl-app list`)."""
    _SOURCES[cls] = source


def registered_classes():
    """Every class registered with `@register` so far."""
    return list(_DECORATED)


def forget(classes):
    """Drop `classes` from the registry (a recipe file loaded again, or one that failed to load)."""
    for cls in list(classes):
        _DECORATED.pop(cls, None)
        _SOURCES.pop(cls, None)


def classes_from(source):
    """The registered classes recorded as coming from `source`."""
    return [cls for cls, recorded in _SOURCES.items() if recorded == source]


def _normalized(dist_name):
    return dist_name.lower().replace("-", "_").replace(".", "_")


def loaded_entry_points(group, kind, accepts, expected):
    """[(entry point, distribution name, loaded object)] of every entry point of `group` that imports and
    that `accepts`; a warning names each other one and its package, and the others still work.

    Args:
        group: the entry-point group (`tl_app.recipes`, `tl_app.backbones`).
        kind: what one is called in the warnings ("recipe", "backbone").
        accepts: `accepts(entry, obj) -> bool`, whether the loaded object is one.
        expected: what it should have been, for the warning ("a tl_app Recipe subclass").
    """
    found = []
    for entry in importlib.metadata.entry_points(group=group):
        dist = entry.dist.name if entry.dist is not None else "an unknown package"
        try:
            loaded = entry.load()
        except Exception as exc:  # a broken plugin must not take the others down
            message = (str(exc).strip().splitlines() or [""])[0][:200]
            log.warn(f"{kind} '{entry.name}' of package {dist} cannot be imported ({entry.value}: "
                     f"{type(exc).__name__}: {message}); the other {kind}s still work.")
            continue
        if not accepts(entry, loaded):
            log.warn(f"{kind} '{entry.name}' of package {dist} names {entry.value}, which is not {expected}; skipped.")
            continue
        found.append((entry, dist, loaded))
    return found


@functools.lru_cache(maxsize=None)
def _entry_point_recipes():
    """[(name, class, Source)] of every loadable entry point of the group; warns about the others."""
    from tl_app.recipe import Recipe

    def is_recipe(entry, cls):
        return isinstance(cls, type) and issubclass(cls, Recipe)

    return tuple((entry.name, cls, BUILT_IN if _normalized(dist) == DISTRIBUTION else Source("package", dist))
                 for entry, dist, cls in loaded_entry_points(ENTRY_POINT_GROUP, "recipe", is_recipe,
                                                             "a tl_app Recipe subclass"))


def source_of(cls):
    """The Source of a recipe class: recorded (files), built-in (tl_app.recipes), else its module."""
    if cls in _SOURCES:
        return _SOURCES[cls]
    if cls.__module__.split(".")[:2] == ["tl_app", "recipes"]:
        return BUILT_IN
    return Source("module", cls.__module__)


def _table():
    """{name: (class, Source)} of every known recipe; UserError when two classes claim one name."""
    table = {}

    def put(name, cls, source):
        if name in table and table[name][0] is not cls:
            raise UserError(f"recipe name '{name}' is registered twice: by {table[name][1]} "
                            f"({table[name][0].__module__}.{table[name][0].__qualname__}) and by {source} "
                            f"({cls.__module__}.{cls.__qualname__}); rename one of them.")
        if name not in table:
            if not vars(cls).get("name"):  # an entry point's class need not say its own name
                cls.name = name
            table[name] = (cls, source)

    for name, cls, source in _entry_point_recipes():
        put(name, cls, source)
    for cls, name in list(_DECORATED.items()):
        put(name, cls, source_of(cls))
    return table


def names():
    """The names of every known recipe, sorted."""
    table = _table()
    if not table:
        raise UserError(f"no recipes found in the entry-point group '{ENTRY_POINT_GROUP}': is tl_app installed "
                        "(`make install`, or `pip install -e .`)?")
    return sorted(table)


def source(name):
    """Where recipe `name` comes from (a Source)."""
    return _table()[name][1]


def get(name):
    """The recipe class called `name`, or a UserError listing the known ones."""
    table = _table()
    if name in table:
        return table[name][0]
    known = ", ".join(sorted(table))
    close = difflib.get_close_matches(name, list(table), n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown recipe '{name}'.{hint} Known recipes: {known} (see `tl-app list`)."
                    " A recipe in a file runs as `tl-app run path/to/file.py`.")
