"""TensorFlow Datasets loading that fails fast offline.

`tfds.load` on a machine without network waits minutes on DNS before failing.
Here a data set that is not prepared locally is downloaded only after a short
reachability probe; offline, the user gets one line naming the alternative.
"""
import os

from tl_app.errors import UserError
from tl_app.network import host_reachable

# The host tfds downloads prepared data and metadata from.
_PROBE_HOST = ("storage.googleapis.com", 443)
_PROBE_SECONDS = 3.0


def network_available(timeout=_PROBE_SECONDS):
    """True when the tfds download host answers within `timeout` seconds (TL_APP_OFFLINE=1: False)."""
    return host_reachable(_PROBE_HOST, timeout)


def is_prepared(builder):
    return builder.is_prepared()


def train_validation_test(validation_fraction):
    """tfds split strings: validation carved from the end of `train` (whole percent), `test` as is."""
    from tl_app.errors import UserError

    held_out = int(round(validation_fraction * 100))
    if not 0 < held_out < 100:
        raise UserError(f"--set validation_fraction={validation_fraction}: tfds splits by whole percent;"
                        " choose a value between 0.01 and 0.99.")
    return {"train": f"train[:{100 - held_out}%]", "validation": f"train[{100 - held_out}%:]", "test": "test"}


def load_tfds(name, splits, data_dir=None, offline_hint=""):
    """`{key: dataset}` of supervised `(image/text, label)` pairs for tfds split strings.

    Args:
        name: tfds name, e.g. "mnist" or "glue/sst2".
        splits: `{key: tfds split string}`, e.g. `{"train": "train[:90%]", "test": "test"}`.
        data_dir: tfds data directory; None means tfds's default (~/tensorflow_datasets).
        offline_hint: what to tell the user to do instead when offline.

    Returns:
        The datasets and the builder's `info` (for class names).
    """
    builder = prepared_builder(name, data_dir, offline_hint)
    datasets = {key: builder.as_dataset(split=split, as_supervised=True) for key, split in splits.items()}
    return datasets, builder.info


def prepared_builder(name, data_dir=None, offline_hint=""):
    """The tfds builder of `name`, prepared: downloaded only after a short reachability probe.

    Offline and not prepared, it raises a UserError ending in `offline_hint` instead of waiting on DNS.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as exc:  # tfds raises many types for unknown names / bad dirs
        raise UserError(f"tfds data set '{name}' cannot be opened: {str(exc).splitlines()[0]}") from None
    if not is_prepared(builder):
        if not network_available():
            where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
            raise UserError(
                f"tfds data set '{name}' is not prepared in {where} and its download server cannot be reached"
                f" (offline?). {offline_hint}".rstrip()
            )
        builder.download_and_prepare()
    return builder
