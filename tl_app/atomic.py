"""Files a kill cannot leave half-written, and the temporaries a killed process leaves behind.

`write_atomic(path, write)` writes to a temporary file beside `path`, fsyncs it and
renames it onto `path`: a reader (or a resumed run) finds the old file or the new
one, never part of one, whenever the writer is killed.

Every temporary (a file here, an export's directory, a feature-store entry, a worker's
scratch directory) is named `<prefix><host>@<pid>-<random><suffix>`: it says which
process owns it. A killed process cannot remove its own, so the next run that finds
them calls `remove_stale(directory, prefix)`, which removes those whose owner is gone
(this host, no such process) and logs how much that freed. A temporary of a live
process, or of another host sharing the directory, is never touched.
"""
import json
import os
import re
import shutil
import socket
import tempfile

from tl_app import log

PREFIX = ".tmp-"  # temporaries of write_atomic; hidden, so TF Serving and listings skip them


def _host():
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def owned_prefix(prefix):
    """`prefix` followed by this process's owner tag (`host@pid-`): the start of its temporaries' names."""
    return f"{prefix}{_host()}@{os.getpid()}-"


def make_temp_file(directory, prefix=PREFIX, suffix=""):
    """`(fd, path)` of a new temporary file in `directory`, named after its owner (see the module docstring)."""
    return tempfile.mkstemp(prefix=owned_prefix(prefix), suffix=suffix, dir=directory)


def make_temp_dir(directory, prefix):
    """A new temporary directory in `directory`, named after its owner (see the module docstring)."""
    return tempfile.mkdtemp(prefix=owned_prefix(prefix), dir=directory)


def _new_file_mode():
    """The permissions `open(path, "w")` gives a new file (0o666 less the umask); mkstemp's are 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path, write, prefix=PREFIX, suffix="", mode=None):
    """Call `write(binary_file)` on a temporary file beside `path`, fsync, then rename it onto `path`.

    Args:
        path: the file to create or replace.
        write: a function of the open binary file.
        prefix, suffix: of the temporary's name (`remove_stale` finds it by them).
        mode: the file's permission bits; default: those of a file `open(path, "w")` creates.

    Examples:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "state.json")
        >>> write_atomic(path, lambda f: f.write(b'{"epoch": 3}'))
        >>> open(path).read(), os.listdir(os.path.dirname(path))
        ('{"epoch": 3}', ['state.json'])
    """
    fd, tmp = make_temp_file(os.path.dirname(path) or ".", prefix, suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode() if mode is None else mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, payload):
    """`payload` as indented, key-sorted JSON at `path`, written atomically."""
    write_atomic(path, lambda f: f.write(json.dumps(payload, indent=2, sort_keys=True).encode("utf-8")))


def _owner(name, prefix):
    """`(host, pid)` of a temporary's name, or None when the name carries no owner."""
    match = re.match(re.escape(prefix) + r"(?P<host>[A-Za-z0-9._-]+)@(?P<pid>\d+)-", name)
    return (match["host"], int(match["pid"])) if match else None


def process_alive(pid):
    """Whether a process `pid` runs on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size(path):
    if os.path.isdir(path) and not os.path.islink(path):
        return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path)
                   for name in names if not os.path.islink(os.path.join(folder, name)))
    return os.path.getsize(path)


def remove_stale(directory, prefix=PREFIX, suffix=""):
    """Remove the temporaries in `directory` whose owner process is gone; returns `(count, bytes freed)`.

    Only names `<prefix><host>@<pid>-...<suffix>` of this host whose pid runs no process are removed;
    the log says how many and how much space that freed.

    Args:
        directory: where to look (a missing directory has none).
        prefix: the start of the temporaries' names (before the owner tag).
        suffix: the end of their names.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError:  # missing or unreadable: nothing of ours to remove
        return 0, 0
    host, count, freed = _host(), 0, 0
    for name in names:
        owner = _owner(name, prefix)
        if owner is None or not name.endswith(suffix) or owner[0] != host or process_alive(owner[1]):
            continue
        path = os.path.join(directory, name)
        try:
            size = _size(path)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError:
            continue  # removed meanwhile by another run, or not ours to remove: leave it
        count, freed = count + 1, freed + size
    if count:
        log.info(f"removed {count} temporary file(s)/directory(ies) left in {directory} by killed processes"
                 f" ({freed / 1e6:.1f} MB freed)")
    return count, freed
