"""Training without flagged examples (`exclude_issues=label,leak`): the data filtered, the user's files untouched.

`label`, `duplicate` and `outlier` findings name the example to leave out; a `leak` names a test example, and
what is left out is its training twin (the test split stays whole; its metrics are also reported without the
leaked examples). The excluded list is written to the run directory.
"""
import numpy as np

from tl_app.errors import UserError
from tl_app.inspect.findings import ISSUES

EXCLUDED_FILE = "excluded.csv"


def parse_kinds(text):
    """The issue kinds of `exclude_issues` ("label,leak"); UserError for an unknown one.

    Examples:
        >>> parse_kinds("label, leak")
        ('label', 'leak')
        >>> parse_kinds("labels")
        Traceback (most recent call last):
        ...
        tl_app.errors.UserError: --set exclude_issues=labels: unknown issue kind 'labels'; choose from label, duplicate, leak, outlier (comma-separated), e.g. exclude_issues=label,leak.
    """
    if text is None or not text.strip() or text.strip().lower() == "none":
        return ()
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    for kind in kinds:
        if kind not in ISSUES:
            raise UserError(f"--set exclude_issues={text}: unknown issue kind '{kind}'; choose from "
                            f"{', '.join(ISSUES)} (comma-separated), e.g. exclude_issues=label,leak.")
    return kinds


def without(dataset, indices, size):
    """`dataset` (unbatched) without the examples at `indices` (positions, as data_issues.csv's `index`)."""
    import tensorflow as tf

    keep = np.ones(size, bool)
    keep[np.asarray(indices, np.int64)] = False
    table = tf.constant(keep)
    return (dataset.enumerate()
            .filter(lambda i, example: tf.gather(table, i))
            .map(lambda i, example: example))


def keep_features(store, extractor, dataset, features, labels, indices):
    """Put the kept examples' features in `store` under the filtered dataset's key, so the head phase reuses
    them instead of extracting again (one hashing pass, no forward pass)."""
    from tl_app.engine.feature_store import split_key

    if store is None:
        return
    keep = np.ones(len(labels), bool)
    keep[np.asarray(indices, np.int64)] = False
    store.save(split_key(store.extractor_hash(extractor), dataset), features[keep], labels[keep])
