"""Read a legacy (pre-zip) PyTorch checkpoint into numpy arrays, without torch and without running its code.

`torch.save` wrote this format until PyTorch 1.6 made the zip archive the default
(`_use_new_zipfile_serialization=False` still writes it). As `torch/serialization.py`
(`_legacy_save` / `_legacy_load`) writes and reads it, the file is, one after another:

1. a pickle of the magic number `0x1950a86a20f9469cfc6c`;
2. a pickle of the protocol version, 1001;
3. a pickle of the system information (`little_endian`, `type_sizes`, ...);
4. the pickle of the object saved (here a state dict, a `collections.OrderedDict`). Each tensor in
   it is `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
   backward_hooks)`, and each storage a *persistent id*: the tuple
   `("storage", storage_type, key, location, numel, view_metadata)`, `storage_type` being a global
   such as `torch.FloatStorage` and `view_metadata` None or `(view_key, offset, view_size)`;
5. a pickle of the list of storage keys, in the order their bytes follow;
6. for each of those storages: its element count as a little-endian int64, then its elements'
   raw bytes (little-endian).

A pickle can name any importable callable and have the loader call it (`os.system` included), so
`load_legacy_checkpoint` unpickles with `RestrictedUnpickler`: its `find_class` allows only the few
names that rebuild tensors and an `OrderedDict`, and refuses every other global with
`ForbiddenGlobal` before anything is called. Tensors become numpy arrays (copies, in the stored
size, stride and offset); `requires_grad` and hooks are dropped.

Examples:
    >>> from tl_app.image.backbones.torch_checkpoint import load_legacy_checkpoint
    >>> weights = load_legacy_checkpoint("efficientnet-lite0-57934424.pth")  # doctest: +SKIP
    >>> weights["_conv_stem.weight"].shape  # doctest: +SKIP
    (32, 3, 3, 3)
"""
import collections
import functools
import io
import pickle
import struct

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# storage class name -> numpy dtype of its elements (all little-endian on disk).
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


class CheckpointError(ValueError):
    """The file is not a legacy PyTorch checkpoint this reader understands, or it is damaged."""


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowed tensor-rebuilding names; nothing was called."""


class _StorageType:
    """What `torch.FloatStorage` (etc.) stands for here: only its element type."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """A storage named by the pickle; its bytes are read after the pickle."""

    def __init__(self, storage_type, numel):
        self.storage_type = storage_type
        self.numel = numel
        self.array = None  # flat numpy array, once read


class _StorageView:
    """A storage that is a slice of another (old files shared storages this way)."""

    def __init__(self, root, offset, size):
        self.root, self.offset, self.size = root, offset, size

    @property
    def storage_type(self):
        return self.root.storage_type


class _PendingTensor:
    """A tensor whose storage bytes have not been read yet."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    if not isinstance(storage, (_Storage, _StorageView)):
        raise CheckpointError(f"a tensor refers to {type(storage).__name__}, not to a storage")
    return _PendingTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_ignored):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only what a tensor state dict needs; any other global raises `ForbiddenGlobal`.

    Args:
        file: a binary file positioned at a pickle.
        storages: {key: storage} shared across the file, filled by `persistent_load`.
    """

    def __init__(self, file, storages=None):
        super().__init__(file)
        self.storages = {} if storages is None else storages

    def find_class(self, module, name):
        try:
            value = ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"refusing the global {module}.{name}: a tensor checkpoint needs only "
                                  f"tensors, storages and OrderedDict") from None
        # Fresh objects per lookup: state a pickle sets on them (BUILD) stays inside this file.
        if isinstance(value, _StorageType):
            return _StorageType(value.name)
        return value if value is collections.OrderedDict else functools.partial(value)

    def persistent_load(self, saved_id):
        if not isinstance(saved_id, tuple) or not saved_id or saved_id[0] not in ("storage", b"storage"):
            raise CheckpointError(f"unexpected persistent id {str(saved_id)[:80]} (only storages are read)")
        try:
            _, storage_type, key, _location, numel, view = saved_id
        except ValueError:
            raise CheckpointError(f"malformed storage reference {str(saved_id)[:80]}") from None
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"malformed storage reference {str(saved_id)[:80]}")
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        root = self.storages.setdefault(key, _Storage(storage_type, numel))
        if root.storage_type.dtype != storage_type.dtype:
            raise CheckpointError(f"storage {key} is referred to with two element types")
        if view is None:
            return root
        view_key, offset, size = view
        if offset < 0 or size < 0 or offset + size > root.numel:
            raise CheckpointError(f"view {view_key} lies outside storage {key}")
        return _StorageView(root, offset, size)


def _load_plain(file, what):
    """A small header pickle (numbers, strings, dicts, lists): no global at all is allowed."""
    try:
        return RestrictedNoGlobals(file).load()
    except ForbiddenGlobal:
        raise
    except Exception as exc:
        raise CheckpointError(f"cannot read the {what}: {type(exc).__name__}: {exc}") from None


class RestrictedNoGlobals(pickle.Unpickler):
    """For the header pickles: plain data only."""

    def find_class(self, module, name):
        raise ForbiddenGlobal(f"refusing the global {module}.{name} in a checkpoint header")

    def persistent_load(self, saved_id):
        raise CheckpointError("unexpected persistent id in a checkpoint header")


def _read_storages(file, storages, keys):
    for key in keys:
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        if key not in storages:
            raise CheckpointError(f"the storage list names {key}, which no tensor uses")
        storage = storages[key]
        head = file.read(8)
        if len(head) != 8:
            raise CheckpointError(f"the file ends before storage {key}")
        (numel,) = struct.unpack("<q", head)
        if numel != storage.numel:
            raise CheckpointError(f"storage {key} holds {numel} elements, the pickle says {storage.numel}")
        dtype = storage.storage_type.dtype
        data = file.read(numel * dtype.itemsize)
        if len(data) != numel * dtype.itemsize:
            raise CheckpointError(f"the file ends inside storage {key}")
        array = np.frombuffer(data, dtype=dtype)
        if storage.storage_type.name == "BFloat16Storage":  # bfloat16: the high half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        storage.array = array.astype(array.dtype.newbyteorder("="))
    missing = [k for k, s in storages.items() if s.array is None]
    if missing:
        raise CheckpointError(f"no bytes for storage(s) {', '.join(missing[:5])}")


def _materialise(tensor):
    storage = tensor.storage
    flat = storage.array
    if isinstance(storage, _StorageView):
        flat = storage.root.array[storage.offset:storage.offset + storage.size]
    size, stride, offset = tensor.size, tensor.stride, tensor.offset
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise CheckpointError(f"bad tensor layout: size {size}, stride {stride}, offset {offset}")
    if 0 in size:
        return np.zeros(size, flat.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(flat):
        raise CheckpointError(f"a tensor of size {size} reaches past its storage of {len(flat)} elements")
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                           strides=[s * flat.itemsize for s in stride], writeable=False)
    return np.array(view)  # a copy: contiguous and writable


def _resolve(value):
    if isinstance(value, _PendingTensor):
        return _materialise(value)
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    return value


def read_legacy_checkpoint(file):
    """The object saved in the legacy checkpoint `file` (a seekable binary file), its tensors as numpy arrays.

    Raises:
        ForbiddenGlobal: the pickle names a global outside `ALLOWED_GLOBALS` (nothing was called).
        CheckpointError: anything else that is not a well-formed legacy checkpoint.
    """
    start = file.read(2)
    file.seek(-len(start), io.SEEK_CUR)
    if start == b"PK":
        raise CheckpointError("a zip-format checkpoint (torch >= 1.6); this reader handles the legacy format only")
    if _load_plain(file, "magic number") != MAGIC_NUMBER:
        raise CheckpointError("not a legacy PyTorch checkpoint (wrong magic number)")
    version = _load_plain(file, "protocol version")
    if version != PROTOCOL_VERSION:
        raise CheckpointError(f"protocol version {version}, expected {PROTOCOL_VERSION}")
    info = _load_plain(file, "system information")
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise CheckpointError("written on a big-endian machine; not supported")
    storages = {}
    try:
        result = RestrictedUnpickler(file, storages).load()
    except (ForbiddenGlobal, CheckpointError):
        raise
    except Exception as exc:
        raise CheckpointError(f"cannot read the saved object: {type(exc).__name__}: {exc}") from None
    keys = _load_plain(file, "storage key list")
    if not isinstance(keys, list):
        raise CheckpointError("the storage key list is not a list")
    _read_storages(file, storages, keys)
    return _resolve(result)


def load_legacy_checkpoint(path):
    """{name: numpy array} of the legacy PyTorch state dict at `path` (see the module docstring)."""
    with open(path, "rb") as file:
        state = read_legacy_checkpoint(file)
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint holds a {type(state).__name__}, not a state dict")
    return dict(state)
