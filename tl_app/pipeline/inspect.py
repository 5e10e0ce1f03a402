"""The `inspect` stage: likely label errors, duplicates, leaks and outliers of the run's data, before training.

    prepare -> inspect -> serving_check -> train -> evaluate (+ counts, test metrics without leaks) -> gate ...

With `inspect_data=auto` (the default) it runs when the recipe has a head phase on frozen-base features (image
and text recipes), `true` requires it, `false` skips it. It builds the model (the train stage then uses it),
reads the head phase's extractor, and extracts every split through the feature store, so the head phase
then reuses the train and validation features: the inspection costs the test split's features, a hashing
pass and seconds of scikit-learn. It writes `data_issues.csv`, adds `label_issues`, `duplicates`, `leaks`,
`outliers` and `accuracy_without_leaks`, `f1_macro_without_leaks` to metrics.json (a gate may name them:
`--gate "leaks==0"`), a "Data issues" section to report.md, and TensorBoard text and images (`inspect/`).
`exclude_issues=label,leak` trains without the flagged examples (listed in `excluded.csv`); no input file is
ever moved, renamed or deleted.
"""
import os

from tl_app import log
from tl_app.errors import UserError
from tl_app.pipeline.context import Stage

COUNT_NAMES = ("label_issues", "duplicates", "leaks", "outliers")
WITHOUT_LEAKS = ("accuracy", "f1_macro")
_CACHE = "_inspect_feature_cache"  # the context attribute holding the extractor `check` found (or None)


def options_of(config):
    from tl_app.inspect.inspection import InspectOptions

    return InspectOptions(folds=config.inspect_folds, seed=config.seed, cut=config.inspect_cut,
                          similarity=config.inspect_similarity)


def planned(ctx):
    """The `FeatureCache` whose extractor the inspection reads, or None when the run does not inspect."""
    return getattr(ctx, _CACHE, None)


def metric_names(ctx):
    """The metrics.json names the inspection adds (none when it does not run)."""
    if planned(ctx) is None:
        return []
    return list(COUNT_NAMES) + [f"{name}_without_leaks" for name in WITHOUT_LEAKS]


def check_gate_names(ctx, conditions):
    """UserError for a gate on an inspection figure this run does not compute."""
    missing = [c.metric for c in conditions if c.metric in COUNT_NAMES + tuple(f"{n}_without_leaks" for n in WITHOUT_LEAKS)
               and c.metric not in metric_names(ctx)]
    if missing:
        why = ("inspect_data=false" if ctx.config.inspect_data == "false" else
               f"the recipe '{ctx.recipe.name}' has no frozen-base features to inspect")
        raise UserError(f"--gate {ctx.options.gate!r}: {', '.join(missing)} is counted by the data inspection, which "
                        f"this run does not do ({why}); drop the condition, or use --set inspect_data=auto with an "
                        "image or text recipe.")


def _check_config(config):
    from tl_app.inspect.exclusion import parse_kinds

    kinds = parse_kinds(config.exclude_issues)
    if config.inspect_folds < 2:
        raise UserError(f"--set inspect_folds={config.inspect_folds}: k-fold needs at least 2 folds (5 is usual).")
    if not 0.0 < config.inspect_similarity <= 1.0:
        raise UserError(f"--set inspect_similarity={config.inspect_similarity}: a cosine similarity in (0, 1], "
                        "e.g. 0.995.")
    if kinds and config.inspect_data == "false":
        raise UserError(f"--set exclude_issues={config.exclude_issues} needs the data inspection; drop "
                        "inspect_data=false.")
    return kinds


def find_feature_cache(ctx):
    """Build the model (as the train stage would) and return the head phase's `FeatureCache`, or None."""
    from tl_app.engine.features import frozen_feature_cache
    from tl_app.pipeline.train import build_model

    if ctx.model is None:
        build_model(ctx)
    return frozen_feature_cache(ctx.recipe, ctx.model)


def enough_examples(ctx):
    """Whether every class has `inspect_folds` training and validation examples; with `inspect_data=true` a
    class short of them is a UserError naming it, with `auto` the inspection is skipped (and the log says why)."""
    import numpy as np

    from tl_app.inspect.out_of_fold import check_folds

    labels = np.concatenate([np.fromiter((int(y) for _, y in split.as_numpy_iterator()), np.int64)
                             for split in (ctx.data.train, ctx.data.validation)])
    try:
        check_folds(labels, ctx.data.class_names, ctx.config.inspect_folds, "train+validation")
    except UserError as exc:
        if ctx.config.inspect_data == "true" or ctx.config.exclude_issues:
            raise
        log.info(f"inspection skipped (inspect_data=auto): {str(exc).removeprefix('inspection: ')}")
        return False
    return True


def without_leaks(inspection, evaluation):
    """`{accuracy_without_leaks, f1_macro_without_leaks}` of the test predictions minus the leaked examples."""
    import numpy as np

    from tl_app.evaluate.metrics import classification_metrics

    p = evaluation.predictions
    keep = np.ones(len(p.labels), bool)
    keep[inspection.leaked_test()] = False
    if not keep.any():
        return {f"{name}_without_leaks": float("nan") for name in WITHOUT_LEAKS}
    metrics = classification_metrics(p.labels[keep], p.probabilities[keep], p.class_names)
    return {f"{name}_without_leaks": float(metrics[name]) for name in WITHOUT_LEAKS}


def exclude(ctx, inspection, features, kinds, store):
    """Leave the flagged training and validation examples out of `ctx.data`; `excluded.csv` lists them."""
    import csv

    from tl_app.inspect.exclusion import EXCLUDED_FILE, keep_features, without

    cache, rows = planned(ctx), []
    for split in ("train", "validation"):
        indices = inspection.flagged(split, kinds)
        if not indices:
            continue
        x, y = features[split]
        if len(indices) >= len(y):
            raise UserError(f"exclude_issues={ctx.config.exclude_issues} would leave no {split} example; inspect the "
                            "findings (tl-app inspect) instead.")
        filtered = without(getattr(ctx.data, split), indices, len(y))
        keep_features(store, cache.extractor, filtered, x, y, indices)
        setattr(ctx.data, split, filtered)
        references = ctx.data.references.get(split)
        if references:
            ctx.data.references[split] = [r for i, r in enumerate(references) if i not in set(indices)]
        rows += [(split, i, references[i] if references else "") for i in indices]
    log.info(f"exclude_issues={ctx.config.exclude_issues}: training without {len(rows)} flagged example(s)")
    if ctx.is_chief:
        with open(os.path.join(ctx.run_dir, EXCLUDED_FILE), "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("split", "index", "input"), *rows])
    return len(rows)


def write_outputs(ctx, inspection, datasets, excluded):
    """data_issues.csv, the report section (with thumbnails for pictures) and TensorBoard records.
    `datasets`: the splits as inspected (before any exclusion: the findings' indices are theirs)."""
    from tl_app.evaluate import summaries
    from tl_app.inspect.findings import CSV_FILE, write_csv
    from tl_app.inspect.report import FIGURE, section_lines, thumbnails_png

    write_csv(os.path.join(ctx.run_dir, CSV_FILE), inspection.findings)
    picture = thumbnails_png(inspection, datasets)
    if picture:
        with open(os.path.join(ctx.run_dir, FIGURE), "wb") as f:
            f.write(picture)
    writer = summaries.writer(os.path.join(ctx.run_dir, "inspect"))
    summaries.write_texts(writer, {"data_issues": "\n".join(section_lines(inspection))}, 0)
    if picture:
        summaries.write_images(writer, {"data_issues": picture}, 0)
    writer.close()
    ctx.report_sections.append(lambda: section_lines(
        inspection, FIGURE if picture else None,
        {k: v for k, v in ctx.metrics.items() if k.endswith("_without_leaks")} if ctx.metrics else None, excluded))


class Inspect(Stage):
    """Find label errors, duplicates, leaks and outliers from the frozen base's features, before training."""

    name = "inspect"

    def enabled(self, ctx):
        return ctx.config.inspect_data != "false"

    def check(self, ctx):
        _check_config(ctx.config)
        if ctx.data.label_mode == "multi_label":
            # Confident learning and the class-conditional probe need one label per example.
            if ctx.config.inspect_data == "true" or ctx.config.exclude_issues:
                raise UserError("--set inspect_data=true / exclude_issues: data inspection works on single-label data;"
                                " a label_mode=multi_label run is not inspected (drop the setting).")
            log.info("inspection: skipped (label_mode=multi_label: it needs one label per example)")
            setattr(ctx, _CACHE, None)
            return
        cache = find_feature_cache(ctx)
        if cache is None and ctx.config.inspect_data == "true":
            raise UserError(f"--set inspect_data=true: the recipe '{ctx.recipe.name}' has no head phase on frozen-base "
                            "features to inspect (MLP recipes train every layer); use an image or text recipe, or "
                            "inspect_data=auto.")
        if cache is None and ctx.config.exclude_issues:
            raise UserError(f"--set exclude_issues={ctx.config.exclude_issues}: the recipe '{ctx.recipe.name}' has no "
                            "frozen-base features to inspect, so nothing is flagged; drop exclude_issues.")
        if cache is not None and not enough_examples(ctx):
            cache = None
        setattr(ctx, _CACHE, cache)

    def run(self, ctx):
        import time

        from tl_app.engine.feature_store import FeatureStore
        from tl_app.inspect.exclusion import parse_kinds
        from tl_app.inspect.splits import inspect_splits, split_datasets

        cache = planned(ctx)
        if cache is None and ctx.data.label_mode == "multi_label":
            return  # `check` said why
        if cache is None:
            log.info(f"inspection: skipped (the recipe '{ctx.recipe.name}' has no frozen-base features)")
            return
        start = time.perf_counter()
        store = FeatureStore() if ctx.config.keep_features else None
        inspection, features = inspect_splits(ctx.data, cache.extractor, ctx.config.batch_size, store,
                                              options_of(ctx.config))
        ctx.inspection = inspection
        inspected = split_datasets(ctx.data)
        kinds = parse_kinds(ctx.config.exclude_issues)
        excluded = exclude(ctx, inspection, features, kinds, store) if kinds else None
        ctx.metric_extras.append(lambda evaluation: {**inspection.counts, **without_leaks(inspection, evaluation)})
        if ctx.is_chief:
            write_outputs(ctx, inspection, inspected, excluded)
        inspection.seconds["stage"] = time.perf_counter() - start
        log.info(f"inspection stage: {inspection.seconds['stage']:.1f} s")
