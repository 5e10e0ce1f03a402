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
