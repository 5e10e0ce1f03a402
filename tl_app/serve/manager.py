"""The versions a server holds: loading, warmup, state, unloading, and what each request is served by.

As TF Serving's manager with its file-system source:
- every `poll_seconds` the source is read again: versions that appear are loaded, versions that
  disappear (or leave the policy) are unloaded;
- a version goes START -> LOADING -> AVAILABLE, and is AVAILABLE only after its warmup requests
  have been replayed; one that fails to load or warm up ends in END with its error, while the
  others keep serving (it is tried again only if its directory is replaced);
- an old version is unloaded once a newer aspired version is AVAILABLE (availability first), or at
  once when its directory is gone; unloaded versions stay in the status as END;
- a request for the latest version gets the newest AVAILABLE one; a label names a version.

Examples:
    >>> import tempfile
    >>> from tl_app.serve.sources import DirectorySource
    >>> manager = ModelManager(DirectorySource(tempfile.mkdtemp()))
    >>> manager.poll()
    >>> manager.status("digits")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ServingError: Could not find any versions of model digits
"""
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Dict, Optional

from tl_app import log
from tl_app.serve.errors import ServingError, invalid, not_found

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class VersionState:
    """What the status reports for one version (`error_code` "OK" unless it failed)."""

    state: str
    error_code: str = "OK"
    error_message: str = ""
    servable: object = None
    path: str = ""
    stamp: Optional[float] = None  # saved_model.pb's mtime when it was (tried to be) loaded


def _failure(exc):
    """(status code, one-line message) of an exception raised while loading a version."""
    if isinstance(exc, ServingError):
        return exc.code, exc.message
    if type(exc).__module__.startswith("tensorflow"):
        from tl_app.serve.errors import from_tensorflow

        error = from_tensorflow(exc)
        return error.code, error.message
    return "UNKNOWN", f"{type(exc).__name__}: {exc}"


def _stamp(path):
    try:
        return os.stat(os.path.join(path, "saved_model.pb")).st_mtime_ns
    except OSError:
        return None


class ModelManager:
    """Loads and serves the versions a `ModelSource` names.

    Args:
        source: a `tl_app.serve.sources.ModelSource`.
        poll_seconds: how often the source is read again (`start()` runs the polling thread).
        max_batch_size: passed to every `Servable`.
        batcher: a `batching.Batcher` every `Servable` shares (server-side batching); None: off.
        loader: `(name, version, path) -> Servable` (default: `Servable.load` then its warmup).
    """

    def __init__(self, source, poll_seconds=1.0, max_batch_size=None, loader=None, batcher=None):
        self.source = source
        self.poll_seconds = poll_seconds
        self.max_batch_size = max_batch_size
        self.batcher = batcher
        self._loader = loader or self._load
        self._lock = threading.Lock()
        self._states: Dict[str, Dict[int, VersionState]] = {}
        self._entries = {}
        self._stop = threading.Event()
        self._thread = None
        self._source_error = None

    # ---- loading ---------------------------------------------------------------------------
    def _load(self, name, version, path):
        from tl_app.serve.servable import Servable

        started = time.perf_counter()
        servable = Servable.load(name, version, path, self.max_batch_size, self.batcher)
        count = servable.warmup()
        log.info(f"{name} version {version}: loaded and warmed up ({count} warmup request(s)) in "
                 f"{time.perf_counter() - started:.1f} s")
        return servable

    def _set(self, name, version, **fields):
        with self._lock:
            states = self._states.setdefault(name, {})
            current = states.get(version)
            states[version] = VersionState(**{**(current.__dict__ if current else {"state": START}), **fields})

    def _load_version(self, name, version, path):
        self._set(name, version, state=START, error_code="OK", error_message="", servable=None, path=path,
                  stamp=_stamp(path))
        self._set(name, version, state=LOADING)
        try:
            servable = self._loader(name, version, path)
        except Exception as exc:  # noqa: BLE001  (any load failure becomes the version's status)
            self._fail(name, version, *_failure(exc))
        else:
            self._set(name, version, state=AVAILABLE, servable=servable)

    def _fail(self, name, version, code, message):
        log.warn(f"{name} version {version} failed to load: {message}")
        self._set(name, version, state=END, error_code=code, error_message=message, servable=None)

    def _unload(self, name, version):
        self._set(name, version, state=UNLOADING)
        self._set(name, version, state=END, servable=None)
        log.info(f"{name} version {version}: unloaded")

    # ---- polling ---------------------------------------------------------------------------
    def poll(self):
        """Read the source once: load what is new, unload what left (synchronously)."""
        try:
            entries = self.source.models()
        except Exception as exc:  # noqa: BLE001  (a bad models.config while serving: keep the last good one)
            if str(exc) != self._source_error:
                log.warn(f"cannot read the models ({exc}); serving the last good configuration")
                self._source_error = str(exc)
            entries = self._entries
        else:
            self._source_error = None
        self._entries = entries
        for name in sorted(set(self._states) | set(entries)):
            entry = entries.get(name)
            on_disk = self.source.versions_on_disk(entry) if entry else []
            aspired = entry.aspired(on_disk) if entry else []
            for version in sorted(aspired, reverse=True):  # newest first: it is what requests want
                path = os.path.join(entry.base_path, str(version))
                state = self._states.get(name, {}).get(version)
                if state is None or state.state == END and (state.error_code == "OK" or state.stamp != _stamp(path)):
                    self._load_version(name, version, path)
            self._unload_leftovers(name, aspired, on_disk)

    def _unload_leftovers(self, name, aspired, on_disk):
        states = self._states.get(name, {})
        any_aspired_available = any(states.get(v) and states[v].state == AVAILABLE for v in aspired)
        for version, state in list(states.items()):
            if state.state != AVAILABLE or version in aspired:
                continue
            if version not in on_disk or any_aspired_available:
                self._unload(name, version)

    def start(self):
        """Poll once now, then every `poll_seconds` in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="tl-app-model-poll", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001  (the server keeps serving what it has)
                print(f"[tl-app] warning: model poll failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self._stop.wait(self.poll_seconds)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ---- lookups ---------------------------------------------------------------------------
    def version_for_label(self, name, label):
        entry = self._entries.get(name)
        if entry is None or label not in entry.labels:
            raise invalid(f"Unrecognized servable version label: {label}")
        return entry.labels[label]

    def servable(self, name, version=None, label=None):
        """The AVAILABLE servable a request names (latest, a version, or a label), or TF Serving's NOT_FOUND."""
        if version is not None and label is not None:
            raise invalid(f"Both model version ({version}) and model version label ({label}) cannot be supplied.")
        if label is not None:
            version = self.version_for_label(name, label)
        with self._lock:
            states = self._states.get(name, {})
            if version is None:
                available = [v for v, s in states.items() if s.state == AVAILABLE]
                if available:
                    return states[max(available)].servable
                raise not_found(f"Servable not found for request: Latest({name})")
            state = states.get(version)
            if state is not None and state.state == AVAILABLE:
                return state.servable
        raise not_found(f"Servable not found for request: Specific({name}, {version})")

    def status(self, name, version=None, label=None):
        """[(version, VersionState)] for the model (all its versions, or the one asked for); NOT_FOUND otherwise."""
        if label is not None:
            version = self.version_for_label(name, label)
        with self._lock:
            states = dict(self._states.get(name, {}))
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [(version, states[version])]
        if not states:
            raise not_found(f"Could not find any versions of model {name}")
        return sorted(states.items())

    def model_names(self):
        with self._lock:
            return sorted(self._states)
