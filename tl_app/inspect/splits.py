"""Inspect a recipe's data splits: features through the feature store, content hashes, then `inspect_features`."""
import time

from tl_app import log
from tl_app.inspect.duplicates import content_hashes
from tl_app.inspect.inspection import InspectOptions, inspect_features

SPLITS = ("train", "validation", "test")


def split_datasets(data):
    """`{split: dataset}` of a `DataSplits` (train, validation, test)."""
    return {"train": data.train, "validation": data.validation, "test": data.test}


def references_of(data):
    """`{split: [file path or excerpt]}` of a `DataSplits` (what predictions.csv names the examples by)."""
    found = dict(getattr(data, "references", None) or {})
    if data.test_references is not None:
        found["test"] = list(data.test_references)
    return found


def inspect_splits(data, extractor, batch_size, store=None, options=None):
    """`(Inspection, features)`: the findings of every split of `data` from `extractor`'s features.

    Args:
        data: the recipe's `DataSplits`.
        extractor: the frozen base (`engine.features.frozen_feature_cache(...).extractor`).
        batch_size: of extraction.
        store: a `FeatureStore`: features an earlier run kept are reused, and the run's head phase reuses these.
        options: `InspectOptions`.
    """
    from tl_app.engine.features import split_features

    options = options or InspectOptions()
    datasets = split_datasets(data)
    start = time.perf_counter()
    features = split_features(extractor, datasets, batch_size, store)
    extracted = time.perf_counter() - start
    hashes = {split: content_hashes(dataset) for split, dataset in datasets.items()}
    hashed = time.perf_counter() - start - extracted
    inspection = inspect_features(features, hashes, references_of(data), data.class_names, options)
    inspection.seconds = {"features": extracted, "hashes": hashed, **inspection.seconds}
    log.info("inspection: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in inspection.counts.items())
             + f" ({sum(inspection.seconds.values()):.1f} s)")
    return inspection, features
