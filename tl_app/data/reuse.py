"""Decoded data kept in memory between the runs of one process, inside an explicit scope.

`tl-app tune` runs every trial in one process, each a whole run of the recipe's pipeline. The trials
differ in hyperparameters, not in their data, yet each run would decode it again: for 12,000 PNG
images that is longer than a head trial trains on cached features. Inside `reused_data()` a loader
that wraps its work in `remembered(key, compute)` computes it once; outside any scope (every
`tl-app run`) `compute` runs as always, nothing is kept and the key is not even built.

A key must name everything the result depends on, the files' sizes and modification times included
(`file_stamps`), so that data changed on disk during the scope is read again.

Examples:
    >>> calls = []
    >>> def decode():
    ...     calls.append(1)
    ...     return "pixels"
    >>> with reused_data():
    ...     first, second = remembered(lambda: "k", decode), remembered(lambda: "k", decode)
    >>> (first, second, len(calls))
    ('pixels', 'pixels', 1)
    >>> remembered(lambda: "k", decode) and len(calls)  # outside the scope: computed every time
    2
    >>> keys = []
    >>> remembered(lambda: keys.append(1) or "k", decode) and len(keys)  # and the key is never built
    0
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
    """`compute()`, or inside a `reused_data()` scope what it returned for the same key before.

    Args:
        key: a function of no arguments returning a hashable key (everything the result depends on); called
            only inside a scope, so that building it (e.g. `file_stamps` of every file) costs nothing elsewhere.
        compute: a function of no arguments.
    """
    with _lock:
        store = _scopes[-1] if _scopes else None
    if store is None:
        return compute()
    made = key()
    with _lock:
        if made in store:
            return store[made]
    value = compute()
    with _lock:
        store[made] = value
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
