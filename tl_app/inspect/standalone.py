"""`tl-app inspect`: a recipe's data inspected without training (features extracted or reused from the store)."""
import os

from tl_app import log
from tl_app.errors import UserError


def check_list_path(path):
    """UserError when `--write-list FILE` exists (nothing is overwritten) or its folder does not."""
    if path is None:
        return
    if os.path.exists(path):
        raise UserError(f"--write-list {path}: exists; name a new file (nothing is overwritten).")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--write-list {path}: folder {folder} does not exist; create it or name another file.")


def inspect_recipe(recipe, out_dir, write_list=None, options=None):
    """Load `recipe`'s data, build its model, inspect its splits; write data_issues.csv (and report.md,
    data_issues.png for pictures) to `out_dir` and `write_list`. Returns the `Inspection`.

    Args:
        recipe: a Recipe with its resolved config.
        out_dir: an existing, empty directory.
        write_list: another path for the findings (a CSV for a person to review), or None.
        options: `InspectOptions` (default: from the recipe's config fields `inspect_*`).
    """
    from tl_app.engine.feature_store import FeatureStore
    from tl_app.engine.features import frozen_feature_cache
    from tl_app.inspect.findings import CSV_FILE, write_csv
    from tl_app.inspect.inspection import InspectOptions
    from tl_app.inspect.report import FIGURE, section_lines, thumbnails_png
    from tl_app.inspect.splits import inspect_splits, split_datasets

    cfg = recipe.config
    options = options or InspectOptions(folds=cfg.inspect_folds, seed=cfg.seed, cut=cfg.inspect_cut,
                                        similarity=cfg.inspect_similarity)
    data = recipe.load_data()
    cache = frozen_feature_cache(recipe, recipe.build_model(data))
    if cache is None:
        raise UserError(f"tl-app inspect {recipe.name}: this recipe has no head phase on frozen-base features to "
                        "inspect (MLP recipes train every layer from the start); inspect an image or text recipe.")
    store = FeatureStore() if cfg.keep_features else None
    inspection, _ = inspect_splits(data, cache.extractor, cfg.batch_size, store, options)
    write_csv(os.path.join(out_dir, CSV_FILE), inspection.findings)
    if write_list:
        write_csv(write_list, inspection.findings)
    picture = thumbnails_png(inspection, split_datasets(data))
    if picture:
        with open(os.path.join(out_dir, FIGURE), "wb") as f:
            f.write(picture)
    lines = [f"# {recipe.name}: data inspection", ""] + section_lines(inspection, FIGURE if picture else None)
    with open(os.path.join(out_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    log.info(f"inspection of {recipe.name}: {os.path.join(out_dir, CSV_FILE)}, {os.path.join(out_dir, 'report.md')}"
             + (f", {write_list}" if write_list else ""))
    return inspection
