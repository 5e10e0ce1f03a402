"""Features of a frozen extractor, computed once per split (and kept on disk by the feature store).

A phase whose base is frozen and that does not augment trains the head on
these features instead of running the base every epoch (`Phase.feature_cache`).
"""
import weakref

import numpy as np

from tl_app import log
from tl_app.engine.datasets import batched
from tl_app.engine.feature_store import split_key


_TRACED = weakref.WeakKeyDictionary()  # model -> {input signature: traced inference function}


def inference_function(extractor, *element_specs):
    """`extractor` in inference mode, traced once for batches of any size of inputs fitting all `element_specs`.

    One trace serves every split and the last partial batch (tracing MobileNetV2 costs about a second),
    and is kept with the model: a phase's end and the run's evaluation reuse it (the function reads the
    variables when called, so training in between changes nothing but the weights it sees).
    """
    import tensorflow as tf

    def batch_of(spec, *others):
        common = spec.most_specific_common_supertype(others) if others else spec
        return tf.TensorSpec([None, *common.shape], common.dtype)

    signature = [tf.nest.map_structure(batch_of, *element_specs)]
    traced = _TRACED.setdefault(extractor, {})
    key = tuple(tf.nest.flatten(signature))
    if key not in traced:
        model = weakref.ref(extractor)  # a strong reference here would keep the model (the cache's key) alive
        traced[key] = tf.function(lambda x: model()(x, training=False), input_signature=signature)
    return traced[key]


def extract_features(call, dataset, batch_size):
    """(features, labels) numpy arrays: one pass of `call` (an `inference_function`) over `dataset`."""
    features, labels = [], []
    batches = batched(dataset, batch_size)
    known = int(batches.cardinality())
    for x, y in log.progress(batches, total=known if known >= 0 else None, desc="extracting features"):
        features.append(call(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(features), np.concatenate(labels)


def cached_features(extractor, dataset, batch_size, store=None, split="train", call=None):
    """(features, labels) of `dataset`: from `store` when it holds them, else extracted (and kept when `store`).

    `call`: the extractor's `inference_function` to reuse across splits; None traces one.
    """
    call = call or inference_function(extractor, dataset.element_spec[0])
    if store is None:
        return extract_features(call, dataset, batch_size)
    key = split_key(store.extractor_hash(extractor), dataset)
    kept = store.load(key)
    store.history.append((split, key, kept is not None))
    if kept is not None:
        log.info(f"{split}: reused {len(kept[0])} feature vectors kept by an earlier run ({store.path(key)})")
        return kept
    features, labels = extract_features(call, dataset, batch_size)
    path = store.save(key, features, labels)
    if path is not None:
        log.info(f"{split}: kept {len(features)} feature vectors ({features.nbytes / 2**20:.1f} MB) in {path}"
                 " for later runs on the same data and base (--set keep_features=false to not keep them)")
    return features, labels


def frozen_feature_cache(recipe, model):
    """The `FeatureCache` of `recipe`'s first phase that trains on frozen-base features, or None.

    What `tl-app select`, `tl-app inspect` and the inspection stage read features from: the same
    extractor (and so the same feature-store keys) as the run's head phase.

    Args:
        recipe: a Recipe whose `build_model` returned `model`.
        model: the model `recipe.build_model(data)` returned.
    """
    for phase in recipe.phases(model):
        if phase.feature_cache is not None:
            if phase.prepare is not None:
                phase.prepare(model)  # e.g. freeze the base, as the phase itself would
            return phase.feature_cache
    return None


def split_features(extractor, splits, batch_size, store=None):
    """`{split name: (features, labels)}` of `extractor` over each `(inputs, label)` dataset of `splits`.

    One traced inference function serves every split; with a `FeatureStore` each split is reused
    when an earlier run or command kept it, and kept otherwise.

    Args:
        extractor: the frozen part of the model (`FeatureCache.extractor`).
        splits: `{name: unbatched tf.data.Dataset of (inputs, label)}`, e.g. {"train": data.train}.
        batch_size: the batch size of extraction (it does not change the features or their key).
        store: a `tl_app.engine.feature_store.FeatureStore`, or None to keep nothing.

    Examples:
        >>> import keras, numpy as np, tensorflow as tf
        >>> extractor = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        >>> data = tf.data.Dataset.from_tensor_slices((np.ones((5, 3), "float32"), np.zeros(5, "int64")))
        >>> features = split_features(extractor, {"train": data}, batch_size=2)
        >>> features["train"][0].shape
        (5, 2)
    """
    specs = [dataset.element_spec[0] for dataset in splits.values()]
    call = inference_function(extractor, *specs)
    return {name: cached_features(extractor, dataset, batch_size, store, name, call) for name, dataset in splits.items()}
