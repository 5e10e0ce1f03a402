"""An export on disk, read back: which version a path names, its labels, and the recipe it was trained with.

`tl-app tflite MODEL_DIR` (and anything else that works from an export a run
wrote earlier) starts here: MODEL_DIR is a version directory
(`saved_models/<model>/<N>`) or a model directory (its newest version), and the
export's `assets.extra/config.json` names the recipe (`recipe`, or `recipe_file`
for a recipe from a file) and every config field, so the recipe, its data and
its splits come back exactly as they were trained (`tl_app.api.recipe_of_export`).

Examples:
    >>> from tl_app.api import recipe_of_export
    >>> export_dir = resolve_export("saved_models/digits")  # doctest: +SKIP
    >>> recipe = recipe_of_export(export_dir)  # doctest: +SKIP
    >>> recipe.name, read_labels(export_dir)[:3]  # doctest: +SKIP
    ('digits', ['0', '1', '2'])
"""
import glob
import os

from tl_app.errors import UserError
from tl_app.export.savedmodel import ASSETS_EXTRA, versions

SAVED_MODEL = "saved_model.pb"
CONFIG = "config.json"
LABELS = "labels.txt"


def _is_saved_model(path):
    return os.path.isfile(os.path.join(path, SAVED_MODEL))


def resolve_export(path):
    """The version directory `path` names: itself, or a model directory's newest version.

    Raises:
        UserError: `path` is not an export written by tl_app.
    """
    hint = "name an export: a version directory (saved_models/<model>/<N>) or a model directory (its newest version)"
    if not os.path.isdir(path):
        raise UserError(f"{path}: no such directory; {hint}.")
    if not _is_saved_model(path):
        found = [v for v in versions(path) if _is_saved_model(os.path.join(path, str(v)))]
        if not found:
            if glob.glob(os.path.join(path, "*.tflite")) or glob.glob(os.path.join(path, "*", "*.tflite")):
                raise UserError(f"{path}: holds TFLite models, not a SavedModel export; {hint}.")
            raise UserError(f"{path}: not an export (no {SAVED_MODEL} in it, nor in a version directory below it);"
                            f" {hint}.")
        path = os.path.join(path, str(found[-1]))
    for name in (CONFIG, LABELS):
        if not os.path.isfile(os.path.join(path, ASSETS_EXTRA, name)):
            raise UserError(f"{path}: a SavedModel, but not one tl_app exported (no {ASSETS_EXTRA}/{name} naming its"
                            " recipe and classes); convert an export of `tl-app run`.")
    return path


def read_labels(export_dir):
    """The class names of an export (`assets.extra/labels.txt`, one a line)."""
    with open(os.path.join(export_dir, ASSETS_EXTRA, LABELS), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def saved_model_bytes(export_dir):
    """Size of the SavedModel itself: saved_model.pb and variables/ (not assets.extra's copies and notes)."""
    total = os.path.getsize(os.path.join(export_dir, SAVED_MODEL))
    for root, _, files in os.walk(os.path.join(export_dir, "variables")):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def load_saved_model(export_dir):
    """`tf.saved_model.load(export_dir)`, with TF-Text's ops registered first (text exports tokenize in-graph)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers RegexSplitWithOffsets, FastWordpieceTokenize..., with TF)

    return tf.saved_model.load(export_dir)
