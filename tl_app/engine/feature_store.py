"""Cached features kept on disk, so a later run on the same data and base skips extraction.

A head phase on a frozen base trains on features the base computes once
(`engine.features`). Extraction is one forward pass of the base over the data,
as costly as an epoch of the full model, so it bounds what one run can gain;
keeping the features lets the next run on the same data (another learning
rate, dropout or head, a rerun) start training at once.

The key is a SHA-256 over everything the features depend on: the extractor's
architecture (layer names replaced by their order, so automatic names do not
matter), every weight, any tokenizer vocabulary, the dtype policy, the
TensorFlow and Keras versions, and every input and label of the split in
order. A changed image, weight or setting is a new key; entries are never
found by name or date. Each entry is `<dir>/<key>.npz`, written to a
temporary file and renamed, so a killed run leaves no partial entry; the next
store to open the directory removes the temporaries of killed runs.
"""
import hashlib
import json
import os

import numpy as np

from tl_app import atomic, log

FORMAT = b"tl_app-features-v1"
TEMP_PREFIX, TEMP_SUFFIX = ".tmp-features-", ".npz.tmp"  # an entry being written (tl_app.atomic names the owner)


def default_dir():
    """`$TL_APP_FEATURE_CACHE`, else `<cache dir>/features` ($TL_APP_CACHE, default ~/.cache/tl_app)."""
    from tl_app.assets import cache_dir

    return os.path.expanduser(os.environ.get("TL_APP_FEATURE_CACHE") or os.path.join(cache_dir(), "features"))


def _canonical_names(config):
    """`config` with every layer name replaced by its order of first appearance ("#0", "#1", ...)."""
    names = {}

    def collect(node):
        if isinstance(node, dict):
            history = node.get("keras_history")  # a layer input: [layer name, node, tensor]
            for name in (node.get("name"), history[0] if isinstance(history, (list, tuple)) and history else None):
                if isinstance(name, str):
                    names.setdefault(name, f"#{len(names)}")
            for value in node.values():
                collect(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                collect(value)

    def rename(node):
        if isinstance(node, dict):
            return {k: rename(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):  # get_config() holds tuples too (keras_history)
            return [rename(v) for v in node]
        return names.get(node, node) if isinstance(node, str) else node

    collect(config)
    return rename(config)


def _hash_array(digest, array):
    array = np.asarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype == object:  # strings: length-prefixed so ["ab", "c"] differs from ["a", "bc"]
        for item in array.reshape(-1):
            item = item if isinstance(item, bytes) else str(item).encode()
            digest.update(len(item).to_bytes(8, "little"))
            digest.update(item)
    else:
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))


def _vocabularies(model):
    """Vocabularies of tokenizer layers inside `model` (not part of weights or config)."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        get_vocabulary = getattr(layer, "get_vocabulary", None)
        if callable(get_vocabulary):
            try:
                found.append([str(token) for token in get_vocabulary()])
            except Exception:  # a tokenizer without a vocabulary yet has nothing to hash
                continue
    return found


def extractor_digest(extractor):
    """SHA-256 of what an extractor computes: architecture, weights, vocabularies, versions."""
    import keras
    import tensorflow as tf

    digest = hashlib.sha256(FORMAT)
    digest.update(f"tf {tf.__version__} keras {keras.__version__} policy {keras.config.dtype_policy().name}".encode())
    digest.update(json.dumps(_canonical_names(extractor.get_config()), sort_keys=True, default=str).encode())
    digest.update(json.dumps(_vocabularies(extractor)).encode())
    for weight in extractor.weights:
        _hash_array(digest, keras.ops.convert_to_numpy(weight))
    return digest


HASH_BATCH = 256  # fixed, so the key does not depend on the training batch size


def split_key(extractor_hash, dataset):
    """The store key of one split: the extractor's digest plus every `(inputs, label)` of unbatched `dataset`, in order."""
    import tensorflow as tf

    from tl_app.engine.datasets import without_autotune_thread

    digest = extractor_hash.copy()
    # Without the autotune thread, as the training batches: a dropped iterator can wait for its next optimization.
    for inputs, labels in without_autotune_thread(dataset.batch(HASH_BATCH).prefetch(tf.data.AUTOTUNE)):
        for tensor in tf.nest.flatten(inputs):
            _hash_array(digest, tensor.numpy())
        _hash_array(digest, labels.numpy())
    return digest.hexdigest()


class FeatureStore:
    """`(features, labels)` arrays by key in one directory.

    Args:
        directory: where entries live (created on the first save).
    """

    def __init__(self, directory=None):
        self.directory = directory or default_dir()
        self._extractor = self._digest = None
        self._checked = False
        self.history = []  # (split, key, reused) of every lookup, in order: what a caller reports or records

    def extractor_hash(self, extractor):
        """`extractor_digest(extractor)`, computed once per store (an extractor is frozen while its features are cached)."""
        if self._extractor is not extractor:
            self._extractor, self._digest = extractor, extractor_digest(extractor)
        return self._digest

    def path(self, key):
        return os.path.join(self.directory, f"{key}.npz")

    def _remove_stale(self):
        """Once per store: remove the entries killed runs left half-written (their owner process is gone)."""
        if not self._checked:
            self._checked = True
            atomic.remove_stale(self.directory, TEMP_PREFIX, TEMP_SUFFIX)

    def load(self, key):
        """`(features, labels)` stored under `key`, or None (missing, or unreadable: then it is recomputed)."""
        self._remove_stale()
        path = self.path(key)
        if not os.path.exists(path):
            return None
        try:
            with np.load(path) as entry:
                features, labels = entry["features"], entry["labels"]
            if features.dtype != np.float32 or len(features) != len(labels):
                raise ValueError(f"features of dtype {features.dtype}, {len(features)} for {len(labels)} labels")
            return features, labels
        except Exception as error:  # a damaged entry is only a cache miss
            log.warn(f"feature cache entry {path} is unreadable ({type(error).__name__}); computing the features again")
            return None

    def save(self, key, features, labels):
        """Store an entry (temporary file, then rename); returns its path, or None when the directory is not writable."""
        path = self.path(key)
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._remove_stale()
            # float32 always: numpy cannot read back the bfloat16 of mixed precision.
            atomic.write_atomic(path, lambda out: np.savez(out, features=np.asarray(features, np.float32), labels=labels),
                                TEMP_PREFIX, TEMP_SUFFIX)
        except OSError as error:
            log.warn(f"could not keep the features in {self.directory} ({error.strerror or error});"
                     " this run is unaffected, the next one computes them again")
            return None
        return path
