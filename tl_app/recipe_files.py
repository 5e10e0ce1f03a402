"""Recipes from the user's own files: `tl-app run path/to/my_recipe.py[:ClassName]`.

The file is imported as a module (its folder goes on `sys.path`, as Python does
for a script, so it may import helpers beside it). The recipe is the one
Recipe subclass the file defines, or the class named after the colon. Its name
(the folder under runs/ and saved_models/) is the one given by `@register` or a
`name = "..."` class attribute, else the class name in snake_case
(`CsvImages` -> `csv_images`).

Examples:
    >>> is_recipe_file("my_recipe.py"), is_recipe_file("recipes/x.py:Best"), is_recipe_file("digits")
    (True, True, False)
    >>> snake_case("CsvImages")
    'csv_images'
"""
import hashlib
import importlib.util
import os
import re
import sys
import traceback

from tl_app import registry
from tl_app.errors import UserError


def is_recipe_file(spec):
    """True when `spec` names a Python file (`x.py` or `x.py:Class`) rather than a registered recipe."""
    path = spec.rsplit(":", 1)[0] if re.search(r"\.py:\w+$", spec) else spec
    return path.endswith(".py")


def split_spec(spec):
    """(path, class name or None) of `path.py[:Class]`."""
    match = re.match(r"^(.*\.py):(\w+)$", spec)
    return (match.group(1), match.group(2)) if match else (spec, None)


def snake_case(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _import_error(path, exc):
    """One line naming the file, the line in it where the exception arose, and the message."""
    if isinstance(exc, SyntaxError) and exc.filename and os.path.abspath(exc.filename) == path:
        return UserError(f"recipe file {path}, line {exc.lineno}: SyntaxError: {exc.msg}.")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) == path]
    line = f", line {frames[-1].lineno}" if frames else ""
    message = (str(exc).strip().splitlines() or [""])[0][:300]
    return UserError(f"recipe file {path}{line} raised {type(exc).__name__} on import: {message}")


def _import(path):
    """The file as a fresh module (loaded again each time: a long-lived process sees the file's edits)."""
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module_name = f"tl_app_recipe_file_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look classes up by module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # any error in the user's file becomes one line naming it
        del sys.modules[module_name]
        registry.forget(c for c in registry.registered_classes() if c.__module__ == module_name)
        if isinstance(exc, (UserError, KeyboardInterrupt, SystemExit)):
            raise
        raise _import_error(path, exc) from None
    return module


def load(spec):
    """The Recipe subclass of `path.py[:Class]`, registered under its name with the file as its source.

    Args:
        spec: `path/to/file.py` or `path/to/file.py:ClassName`.
    """
    path, class_name = split_spec(spec)
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise UserError(f"recipe file {spec}: no such file.")
    source = registry.Source("file", path)
    registry.forget(registry.classes_from(source))  # this file's recipes as loaded before: replaced
    module = _import(path)
    mine = [c for c in registry.registered_classes() if c.__module__ == module.__name__]
    for registered in mine:  # classes the file decorated with @register
        registry.set_source(registered, source)
    try:
        cls = _pick(path, module, class_name)
        if not vars(cls).get("name"):
            cls.name = snake_case(cls.__name__)
        registry.set_source(cls, source)
        registry.register(cls.name)(cls)
        registry.names()  # a name already taken by another recipe is an error naming both
    except UserError:
        registry.forget(registry.classes_from(source))
        raise
    return cls


def _pick(path, module, class_name):
    """The Recipe subclass the file defines (or the one named `class_name`)."""
    from tl_app.recipe import Recipe

    defined = {name: obj for name, obj in vars(module).items()
               if isinstance(obj, type) and issubclass(obj, Recipe) and obj.__module__ == module.__name__}
    if class_name is not None:
        if class_name not in defined:
            found = ", ".join(sorted(defined)) or "none"
            raise UserError(f"recipe file {path}: no Recipe subclass named {class_name} (it defines: {found}).")
        return defined[class_name]
    if len(defined) == 1:
        return next(iter(defined.values()))
    if not defined:
        raise UserError(f"recipe file {path} defines no Recipe subclass; subclass tl_app.Recipe or a family's base"
                        " (e.g. tl_app.image.ImageClassification) in it.")
    names = ", ".join(sorted(defined))
    raise UserError(f"recipe file {path} defines several Recipe subclasses ({names}); pick one with"
                    f" {os.path.basename(path)}:{sorted(defined)[0]}.")


def spec_of(cls):
    """`path.py:Class` for a recipe loaded from a file (what a saved config records), else None."""
    source = registry.source_of(cls)
    return f"{source.detail}:{cls.__name__}" if source.kind == "file" else None
