"""Versioned SavedModel exports in TF Serving's layout.

`saved_models/<model>/<version>/` with integer versions: a new export takes the
next free number, is written to a hidden temporary directory beside the
versions (TF Serving ignores non-integer names) and renamed into place only
when complete, under a lock so two runs never take the same number. Nothing is
ever overwritten.
"""
import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile

from tl_app import atomic
from tl_app.errors import UserError
from tl_app.export.signatures import ServingSignature  # noqa: F401  (part of this module's API)

ASSETS_EXTRA = "assets.extra"
# Keras weights of the exported model, beside the SavedModel: `tl-app run --init-from` loads them.
KERAS_WEIGHTS = "model.weights.h5"
# ASCII digits only: str.isdigit() accepts "²" and "١", which int() refuses or TF Serving does not read as versions.
VERSION_NAME = re.compile("[0-9]+")
RUN_FILE = "run.json"  # in assets.extra: the run that made the export
EXPORT_PREFIX = ".tmp-export-"  # an export being written (hidden: TF Serving ignores it)


def check_export_dir(base_dir):
    """Fail now, before training, if exports cannot be written under `base_dir`."""
    if os.path.exists(base_dir) and not os.path.isdir(base_dir):
        raise UserError(f"--export-dir {base_dir}: exists and is not a directory; name a directory (or use --no-export).")
    try:
        os.makedirs(base_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=base_dir):
            pass
    except OSError as exc:
        raise UserError(
            f"--export-dir {base_dir}: cannot write there ({exc.strerror}); name a writable directory (or use --no-export)."
        ) from None


def versions(model_dir):
    """The integer version numbers present under `model_dir`, sorted (other names, e.g. "²" or "v2", are not versions)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if VERSION_NAME.fullmatch(name))


def next_version(model_dir):
    existing = versions(model_dir)
    return existing[-1] + 1 if existing else 1


@contextlib.contextmanager
def _locked(model_dir):
    with open(os.path.join(model_dir, ".export.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_assets_extra(export_path, class_names, config_dict, metrics, run=None, extra_files=None):
    extra = os.path.join(export_path, ASSETS_EXTRA)
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    documents = {"config.json": config_dict, "metrics.json": metrics, RUN_FILE: run}
    for name, document in documents.items():
        if document is not None:
            with open(os.path.join(extra, name), "w", encoding="utf-8") as f:
                json.dump(document, f, indent=2, sort_keys=True)
    for name, content in (extra_files or {}).items():
        with open(os.path.join(extra, name), "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)


def remove_stale_exports(model_dir):
    """Remove the half-written exports (temporary directories) of killed processes under `model_dir`."""
    atomic.remove_stale(model_dir, EXPORT_PREFIX)


def run_record(run_dir):
    """What an export records of the run that made it (`assets.extra/run.json`): its run directory."""
    return {"run_dir": os.path.realpath(run_dir), "run_id": os.path.basename(os.path.normpath(run_dir))}


def export_of_run(model_dir, run_dir):
    """The version under `model_dir` that the run `run_dir` exported, or None.

    A run killed after its export was renamed into place, before it was marked complete, finds
    its export here when it resumes, instead of publishing the same model as a second version.
    """
    wanted = run_record(run_dir)["run_dir"]
    for version in reversed(versions(model_dir)):
        path = os.path.join(model_dir, str(version))
        try:
            with open(os.path.join(path, ASSETS_EXTRA, RUN_FILE), encoding="utf-8") as f:
                if json.load(f).get("run_dir") == wanted:
                    return path
        except (OSError, ValueError, AttributeError):
            continue  # another tool's export, or one made before exports recorded their run
    return None


def keras_weights_path(export_path):
    """Where an export keeps its Keras weights (written when `export_model(..., keras_weights=True)`)."""
    return os.path.join(export_path, ASSETS_EXTRA, KERAS_WEIGHTS)


def publish(tmp, model_dir):
    """Rename the complete directory `tmp` (made inside `model_dir`) to the next free version; return its path.

    Under the lock, so two writers never take the same number; nothing is overwritten.
    """
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a model server may run as another user
    with _locked(model_dir):
        final = os.path.join(model_dir, str(next_version(model_dir)))
        os.rename(tmp, final)
    return final


@contextlib.contextmanager
def staged_version(model_dir, prefix=EXPORT_PREFIX):
    """A temporary directory inside `model_dir` (created if missing) to write a new version in, then `publish`.

    Removes first what killed writers of the same kind left there (`atomic.remove_stale`); the
    directory is removed on the way out unless it was published.

    Args:
        model_dir: where the versions live (`saved_models/<model>`, `<model>-tflite`, `<name>-encoder`).
        prefix: the temporaries' name prefix (one per kind of version).
    """
    os.makedirs(model_dir, exist_ok=True)
    atomic.remove_stale(model_dir, prefix)
    tmp = atomic.make_temp_dir(model_dir, prefix)
    try:
        yield tmp
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def export_model(model, signatures, model_dir, class_names, config_dict, metrics, keras_weights=False,
                 before_publish=(), run_dir=None, extra_files=None):
    """Write a complete new version under `model_dir`; return its path.

    Args:
        model: the Keras model whose variables the signatures use.
        signatures: name -> `ServingSignature`; must include `serving_default`.
        model_dir: `saved_models/<model>`; created if missing.
        class_names: written to `assets.extra/labels.txt`.
        config_dict: the resolved run config, written to `assets.extra/config.json`.
        metrics: test metrics, written to `assets.extra/metrics.json`.
        keras_weights: also write `assets.extra/model.weights.h5` (the model's Keras weights) so a
            new run can start from this export (`tl-app run --init-from`); TF Serving ignores it.
        before_publish: callables run with the complete export's temporary directory before it takes a version
            (add files such as warmup requests, check it); one that raises publishes nothing.
        run_dir: the run that made it, recorded in `assets.extra/run.json` (`run_record`; see `export_of_run`).
        extra_files: more files for `assets.extra/`, name -> str or bytes (`Recipe.export_files`).
    """
    import keras

    if "serving_default" not in signatures:
        raise ValueError("an export needs a 'serving_default' signature")
    with staged_version(model_dir) as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        # serving_default first: ExportArchive also aliases the first endpoint.
        for name in sorted(signatures, key=lambda n: n != "serving_default"):
            sig = signatures[name]
            archive.add_endpoint(name=name, fn=sig.fn, input_signature=sig.input_signature)
        archive.write_out(tmp, verbose=False)
        _write_assets_extra(tmp, class_names, config_dict, metrics, run_record(run_dir) if run_dir else None,
                            extra_files)
        if keras_weights:
            model.save_weights(keras_weights_path(tmp))
        for hook in before_publish:
            hook(tmp)
        return publish(tmp, model_dir)
