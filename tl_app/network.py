"""Is a download host reachable? Answered in seconds, so offline runs fail fast."""
import os
import socket
import threading


def host_reachable(host, timeout=3.0):
    """True when `host` (name, port) accepts a connection within `timeout` seconds.

    DNS lookups cannot be given a timeout, so the probe runs in a daemon thread
    that is abandoned if it takes too long. TL_APP_OFFLINE=1 answers False at once.
    """
    if os.environ.get("TL_APP_OFFLINE") == "1":
        return False
    result = []

    def probe():
        try:
            socket.create_connection(host, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


KAGGLE_HOST = ("www.kaggle.com", 443)  # where keras-hub downloads its presets from


def kaggle_cached(handle):
    """True when kagglehub already holds `config.json` of a versioned `kaggle://` handle (no download needed)."""
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    bare = handle.removeprefix("kaggle://")
    if len(bare.split("/")) != 5:  # no version: kagglehub must ask the hub for the latest
        return False
    return Cache().load_from_cache(parse_model_handle(bare), "config.json") is not None
