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
import shutil
import tempfile

from tl_app.errors import UserError
from tl_app.export.signatures import ServingSignature  # noqa: F401  (part of this module's API)

ASSETS_EXTRA = "assets.extra"
# Keras weights of the exported model, beside the SavedModel: `tl-app run --init-from` loads them.
KERAS_WEIGHTS = "model.weights.h5"


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
    """The integer version numbers present under `model_dir`, sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


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


def publish_version(tmp, model_dir):
    """Rename the complete directory `tmp` (inside `model_dir`) to the next free version; returns its path."""
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a model server may run as another user
    with _locked(model_dir):
        final = os.path.join(model_dir, str(next_version(model_dir)))
        os.rename(tmp, final)
    return final


def _write_assets_extra(export_path, class_names, config_dict, metrics):
    extra = os.path.join(export_path, ASSETS_EXTRA)
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in class_names))
    with open(os.path.join(extra, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config_dict, f, indent=2, sort_keys=True)
    with open(os.path.join(extra, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)


def keras_weights_path(export_path):
    """Where an export keeps its Keras weights (written when `export_model(..., keras_weights=True)`)."""
    return os.path.join(export_path, ASSETS_EXTRA, KERAS_WEIGHTS)


def export_model(model, signatures, model_dir, class_names, config_dict, metrics, keras_weights=False,
                 before_publish=()):
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
    """
    import keras

    if "serving_default" not in signatures:
        raise ValueError("an export needs a 'serving_default' signature")
    os.makedirs(model_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=model_dir)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        # serving_default first: ExportArchive also aliases the first endpoint.
        for name in sorted(signatures, key=lambda n: n != "serving_default"):
            sig = signatures[name]
            archive.add_endpoint(name=name, fn=sig.fn, input_signature=sig.input_signature)
        archive.write_out(tmp, verbose=False)
        _write_assets_extra(tmp, class_names, config_dict, metrics)
        if keras_weights:
            model.save_weights(keras_weights_path(tmp))
        for hook in before_publish:
            hook(tmp)
        return publish_version(tmp, model_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
