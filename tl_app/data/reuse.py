"""Decoded data kept in memory between the runs of one process, inside an explicit scope.

`tl-app tune` runs every trial in one process, each a whole run of the recipe's pipeline. The trials
differ in hyperparameters, not in their data, yet each run would decode it again: for 12,000 PNG
images that is longer than a head trial trains on cached features. Inside `reused_data()` a loader
that wraps its work in `remembered(key, compute)` computes it once; outside any scope (every
`tl-app run`) `compute` runs as always and nothing is kept.

A key must name everything the result depends on, the files' sizes and modification times included
(`file_stamps`), so that data changed on disk during the scope is read again.

Examples:
    >>> calls = []
    >>> def decode():
    ...     calls.append(1)
    ...     return "pixels"
    >>> with reused_data():
    ...     first, second = remembered("k", decode), remembered("k", decode)
    >>> (first, second, len(calls))
    ('pixels', 'pixels', 1)
    >>> remembered("k", decode) and len(calls)  # outside the scope: computed every time
    2
"""
import contextlib
import os
import threading

_lock = threading.Lock()
_scopes = []  # the open scopes' stores, innermost last


@contextlib.contextmanager
def reused_data():
    """A scope in which `remembered` keeps what it computes; dropped when the scope ends."""
    store = {}
    with _lock:
        _scopes.append(store)
    try:
        yield store
    finally:
        with _lock:
            _scopes.remove(store)
        store.clear()


def remembered(key, compute):
    """`compute()`, or inside a `reused_data()` scope what it returned for `key` before.

    Args:
        key: hashable; everything the result depends on.
        compute: a function of no arguments.
    """
    with _lock:
        store = _scopes[-1] if _scopes else None
        if store is not None and key in store:
            return store[key]
    value = compute()
    if store is not None:
        with _lock:
            store[key] = value
    return value


def file_stamps(paths):
    """(size, mtime_ns) of each path ((-1, -1) for a missing one): a key part that changes when a file does."""
    stamps = []
    for path in paths:
        try:
            st = os.stat(path)
            stamps.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((-1, -1))
    return tuple(stamps)
