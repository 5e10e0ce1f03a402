"""numpy arrays <-> `TensorProto`, fast for what predict requests and answers carry.

`tf.make_tensor_proto` and `tf.make_ndarray` handle every case in Python and cost about 0.1 ms a
tensor, as much as a small model's whole prediction. Numeric tensors here go through
`tensor_content` (their raw bytes, as TensorFlow's own `AsProtoTensorContent` writes them) and
strings through `string_val`; anything else (half floats, complex, resource...) is left to
TensorFlow's functions.

Examples:
    >>> import numpy as np
    >>> proto = to_proto(np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> from_proto(proto).tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
"""
import numpy as np

# DataType enum values (tensorflow/core/framework/types.proto) of the dtypes handled here.
_NUMERIC = {
    np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int32): 3, np.dtype(np.uint8): 4,
    np.dtype(np.int16): 5, np.dtype(np.int8): 6, np.dtype(np.int64): 9, np.dtype(np.bool_): 10,
    np.dtype(np.uint16): 17, np.dtype(np.uint32): 22, np.dtype(np.uint64): 23,
}
_BY_ENUM = {enum: dtype for dtype, enum in _NUMERIC.items()}
DT_STRING = 7


def to_proto(array):
    """A TensorProto of `array` (numeric, or strings as bytes/str objects)."""
    from tensorflow.core.framework import tensor_pb2

    array = np.asarray(array)
    proto = tensor_pb2.TensorProto()
    if array.dtype in _NUMERIC:
        proto.dtype = _NUMERIC[array.dtype]
        proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    elif array.dtype.kind in "OSU":
        proto.dtype = DT_STRING
        proto.string_val.extend(v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in array.reshape(-1))
    else:
        import tensorflow as tf

        return tf.make_tensor_proto(array)
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    return proto


def from_proto(proto):
    """The numpy array a TensorProto holds (strings as an object array of bytes)."""
    shape = [d.size for d in proto.tensor_shape.dim]
    dtype = _BY_ENUM.get(proto.dtype)
    if dtype is not None and proto.tensor_content:
        count = int(np.prod(shape)) if shape else 1
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise ValueError(f"tensor_content holds {len(proto.tensor_content)} bytes, shape {shape} needs "
                             f"{count * dtype.itemsize}")
        return np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if proto.dtype == DT_STRING and len(proto.string_val) == (int(np.prod(shape)) if shape else 1):
        array = np.empty(len(proto.string_val), dtype=object)
        array[:] = list(proto.string_val)
        return array.reshape(shape)
    import tensorflow as tf

    return tf.make_ndarray(proto)  # typed value fields (float_val, ...), broadcast scalars, other dtypes
