"""TensorFlow Datasets loading that fails fast offline.

`tfds.load` on a machine without network waits minutes on DNS before failing.
Here a data set that is not prepared locally is downloaded only after a short
reachability probe; offline, the user gets one line naming the alternative.
"""
import os
import socket
import threading

from tl_app.errors import UserError

# The host tfds downloads prepared data and metadata from.
_PROBE_HOST = ("storage.googleapis.com", 443)
_PROBE_SECONDS = 3.0


def network_available(timeout=_PROBE_SECONDS):
    """True when the tfds download host answers within `timeout` seconds.

    DNS lookups cannot be given a timeout, so the probe runs in a daemon
    thread and is abandoned if it takes too long. TL_APP_OFFLINE=1 skips it.
    """
    if os.environ.get("TL_APP_OFFLINE") == "1":
        return False
    result = []

    def probe():
        try:
            socket.create_connection(_PROBE_HOST, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def is_prepared(builder):
    return builder.is_prepared()


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
    datasets = {key: builder.as_dataset(split=split, as_supervised=True) for key, split in splits.items()}
    return datasets, builder.info
