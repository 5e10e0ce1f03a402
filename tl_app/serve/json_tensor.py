"""TF Serving's JSON tensor format: predict request bodies -> arrays, output arrays -> response bodies.

The rules and the error messages are those of `tensorflow_serving/util/json_tensor.cc`
(documented in `g3doc/api_rest.md`):

- a request holds `signature_name` (optional, a string) and exactly one of `instances` (row format: a
  non-empty list, one item per example; with one input the items are its values, with several each item
  is an object by input name) or `inputs` (columnar: one tensor, or an object by input name);
- a DT_STRING value is a JSON string or `{"b64": "..."}` (exactly that one key);
- numbers must suit the input's dtype (no booleans for floats, no `1.5` for integers); `NaN` and
  `Infinity` are accepted;
- a row request is answered `{"predictions": ...}` (one output: its values per example; several: an
  object per example), a columnar one `{"outputs": ...}` (one output: its tensor; several: an object);
  outputs whose name ends in `_bytes` are sent as `{"b64": ...}`; floats as their shortest float32 form.

Examples:
    >>> import numpy as np
    >>> parsed = parse_predict_request(b'{"instances": [[1, 2], [3, 4]]}', lambda name: {"x": "DT_FLOAT"})
    >>> parsed.inputs["x"].shape, parsed.inputs["x"].dtype, parsed.row_format
    ((2, 2), dtype('float32'), True)
    >>> predict_response({"y": np.array([0.1, 2.0], np.float32)}, row_format=True)
    b'{"predictions":[0.1,2.0]}'
"""
import base64
import binascii
import json
from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np
import orjson

from tl_app.serve.errors import ServingError, invalid

# DataType name -> (numpy dtype, TensorFlow's DataTypeString) for the types the JSON mapping supports.
DTYPES = {
    "DT_FLOAT": (np.float32, "float"),
    "DT_DOUBLE": (np.float64, "double"),
    "DT_INT8": (np.int8, "int8"),
    "DT_INT16": (np.int16, "int16"),
    "DT_INT32": (np.int32, "int32"),
    "DT_INT64": (np.int64, "int64"),
    "DT_UINT8": (np.uint8, "uint8"),
    "DT_UINT32": (np.uint32, "uint32"),
    "DT_UINT64": (np.uint64, "uint64"),
    "DT_BOOL": (np.bool_, "bool"),
    "DT_STRING": (object, "string"),
}
_FLOATS = ("DT_FLOAT", "DT_DOUBLE")
BYTES_SUFFIX = "_bytes"
MAX_DEBUG_CHARS = 256  # TF Serving's kMaxJsonDebugStringBytes


@dataclass
class PredictJson:
    """A parsed predict body: the signature it names ("" for the default), its inputs, and its format."""

    signature_name: str
    inputs: Dict[str, np.ndarray]
    row_format: bool


def debug_string(value):
    """A JSON value as TF Serving quotes it in errors: compact, cut at 256 characters."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)[:MAX_DEBUG_CHARS]


def _json_type(value):
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value, dtype):
    return invalid(f"JSON Value: {debug_string(value)} Type: {_json_type(value)} is not of expected type: "
                   f"{DTYPES[dtype][1]}")


def is_b64(value):
    """`{"b64": "<string>"}` with no other key: TF Serving's encoding of binary data."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64_decode(value):
    if not is_b64(value):
        raise invalid(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


def _scalar(value, dtype):
    """One JSON leaf as a Python value of `dtype`, or TF Serving's type error."""
    if dtype == "DT_STRING":
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict):
            return _b64_decode(value)
        raise _type_error(value, dtype)
    if isinstance(value, dict):
        raise _type_error(value, dtype)
    if dtype == "DT_BOOL":
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(value, dtype)
    if dtype in _FLOATS:
        return float(value)
    info = np.iinfo(DTYPES[dtype][0])
    if not isinstance(value, int) or not info.min <= value <= info.max:
        raise _type_error(value, dtype)
    return value


def _dense_shape(value):
    """The shape TF Serving reads off a JSON value: the length of each first element, down the nesting."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level, shape, dtype, out):
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid(f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                          f"Expected at level: {len(shape)}")
        out.append(_scalar(value, dtype))
        return
    if level >= len(shape):
        raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
                      f"{shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _exact_tensor(value, dtype):
    """Element by element, with TF Serving's checks and messages (the slow path, and every string tensor)."""
    shape = _dense_shape(value)
    flat = []
    _fill(value, 0, shape, dtype, flat)
    np_dtype = DTYPES[dtype][0]
    if np_dtype is object:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        array = np.array(flat, dtype=np_dtype)
    return array.reshape(shape)


def _fast_tensor(value, dtype):
    """A numeric tensor through numpy, or None when only the exact walk can say what is wrong."""
    if dtype in _FLOATS:  # numbers of any kind are valid floats: convert in one pass
        try:
            with np.errstate(over="ignore"):  # 1e40 as float32 is inf, as TF Serving's GetFloat() makes it
                return np.array(value, dtype=DTYPES[dtype][0])
        except (ValueError, TypeError):
            return None  # ragged nesting, strings, objects, nulls
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        return None  # ragged nesting
    kind = array.dtype.kind
    if dtype in _FLOATS and kind in "iuf" or dtype not in _FLOATS and kind in "iu":
        np_dtype = DTYPES[dtype][0]
        if kind in "iu" and dtype not in _FLOATS and array.size:
            info = np.iinfo(np_dtype)
            if array.min() < info.min or array.max() > info.max:
                return None
        return array.astype(np_dtype, copy=False)
    return None


def to_tensor(value, dtype, exact=False):
    """A JSON value as an array of `dtype` (a DataType name), with TF Serving's rules.

    Args:
        value: the decoded JSON value (nested lists of leaves).
        dtype: e.g. "DT_FLOAT", "DT_STRING".
        exact: walk every element (needed when the body may hold JSON booleans or nulls: numpy would take them
            as 0/1 and NaN).
    """
    if dtype not in DTYPES:
        raise ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: {debug_string(value)} to type: {dtype}")
    if dtype not in ("DT_STRING", "DT_BOOL") and not exact:
        array = _fast_tensor(value, dtype)
        if array is not None:
            return array
    return _exact_tensor(value, dtype)


def _parse_body(body):
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = orjson.loads(body)  # strict JSON, several times faster than the json module on numeric bodies
    except orjson.JSONDecodeError:
        doc = None  # NaN, Infinity, integers over 64 bits, or a malformed body: the json module says which
    try:
        doc = json.loads(body) if doc is None else doc
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    except UnicodeDecodeError as exc:
        raise invalid(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def _is_named_object(value):
    return isinstance(value, dict) and not is_b64(value)


def _from_instances(instances, dtypes, exact):
    names = sorted(dtypes)
    if not _is_named_object(instances[0]) and len(names) > 1 and not isinstance(instances[0], dict):
        raise invalid("instances is a plain list, but expecting list of objects as multiple input tensors required "
                      "as per tensorinfo_map")
    if not _is_named_object(instances[0]):
        if any(_is_named_object(item) for item in instances):
            index = next(i for i, item in enumerate(instances) if _is_named_object(item))
            raise invalid(f"Expecting value/list but got object at item {index} of input list")
        name = names[0]
        try:
            batch = to_tensor(instances, dtypes[name], exact)
        except ServingError:
            _first_bad_instance(instances, name, dtypes[name])
            raise
        if batch.ndim == 0:  # cannot happen: instances is a non-empty list
            raise invalid("No values in 'instances' array")
        return {name: batch}
    columns = {name: [] for name in names}
    for index, item in enumerate(instances):
        if not _is_named_object(item):
            raise invalid(f"Expecting object but got list at item {index} of input list")
        for key in item:
            if key not in dtypes:
                raise invalid(f"Failed to process element: {index} key: {key} of 'instances' list. Error: "
                              f"JSON object: does not have named input: {key} (inputs: {', '.join(names)})")
        if set(item) != set(names):
            raise invalid(f"Failed to process element: {index} of 'instances' list. JSON object: "
                          f"{debug_string(item)} keys must be equal to: {','.join(names)}")
        for key in names:
            columns[key].append(item[key])
    inputs = {}
    for name in names:
        try:
            inputs[name] = to_tensor(columns[name], dtypes[name], exact)
        except ServingError:
            _first_bad_instance(columns[name], name, dtypes[name])
            raise
    return inputs


def _first_bad_instance(items, name, dtype):
    """Raise TF Serving's per-element error for the first item that fails or differs in shape."""
    first_shape = None
    for index, item in enumerate(items):
        try:
            tensor = _exact_tensor(item, dtype)
        except ServingError as exc:
            raise invalid(f"Failed to process element: {index} key: {name} of 'instances' list. "
                          f"Error: {exc.code}: {exc.message}") from None
        if first_shape is None:
            first_shape = tensor.shape
        elif tensor.shape != first_shape:
            if tensor.size != int(np.prod(first_shape)):
                detail = f"Expecting tensor size: {int(np.prod(first_shape))} but got: {tensor.size}"
            else:
                detail = f"Expecting shape [{','.join(map(str, first_shape))}] but got: [{','.join(map(str, tensor.shape))}]"
            raise invalid(f"Failed to process element: {index} key: {name} of 'instances' list. "
                          f"Error: INVALID_ARGUMENT: {detail}") from None


def _from_inputs(value, dtypes, exact):
    names = sorted(dtypes)
    if not _is_named_object(value):
        if len(names) > 1:
            raise invalid("inputs is a plain value/list, but expecting an object as multiple input tensors required "
                          "as per tensorinfo_map")
        return {names[0]: to_tensor(value, dtypes[names[0]], exact)}
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise invalid(f"Unknown input(s) {', '.join(unknown)} in 'inputs' object; the signature's inputs are: "
                      f"{', '.join(names)}")
    inputs = {}
    for name in names:
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        inputs[name] = to_tensor(value[name], dtypes[name], exact)
    return inputs


def parse_predict_request(body, input_dtypes: Callable[[str], Dict[str, str]]):
    """A predict request body -> `PredictJson`; ServingError (INVALID_ARGUMENT, ...) for a bad one.

    Args:
        body: the request body (bytes).
        input_dtypes: signature name ("" for the default) -> {input name: DataType name}; raises ServingError
            for an unknown signature.
    """
    doc = _parse_body(body)
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid(f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key must be a "
                      "string value.")
    dtypes = input_dtypes(signature_name)
    if not dtypes:
        raise invalid(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
    # Only a body that may hold JSON booleans or nulls needs the element-by-element walk (numpy would take them
    # as 0/1 and NaN); any other mistake makes numpy fail, and the walk then names it.
    exact = b"true" in body or b"false" in body or b"null" in body
    if "instances" in doc:
        if "inputs" in doc:
            raise invalid(f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of 'inputs' or "
                          "'instances' keys to exist ")
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        return PredictJson(signature_name, _from_instances(instances, dtypes, exact), row_format=True)
    if "inputs" in doc:
        return PredictJson(signature_name, _from_inputs(doc["inputs"], dtypes, exact), row_format=False)
    raise invalid("Missing 'inputs' or 'instances' key")


# ---- responses ---------------------------------------------------------------------------
def _json_values(name, array, numpy_ok):
    """An output as nested JSON-ready lists (floats in their shortest float32 form); numeric arrays as they
    are when `numpy_ok` (orjson writes float32 in its shortest float32 form too)."""
    if numpy_ok and array.ndim and array.dtype.kind in "iubf":
        return array if array.flags.c_contiguous else array.copy()
    if array.dtype.kind == "f":
        # float32 -> its shortest decimal form -> a Python float that prints that way (as TF Serving writes it).
        return array.astype(str).astype(np.float64).tolist() if array.dtype == np.float32 else array.tolist()
    if array.dtype.kind in "OSU":
        as_bytes = name.endswith(BYTES_SUFFIX)
        flat = [_json_string(v, as_bytes) for v in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim else flat[0]
    return array.tolist()


def _orjson_writes(array):
    """Whether orjson writes `array` as TF Serving does: not NaN or Infinity (orjson: null), not float16."""
    return array.dtype.kind in "iubOSU" or array.dtype in (np.float32, np.float64) and bool(np.isfinite(array).all())


def _dumps(doc, numpy_ok):
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY) if numpy_ok else json.dumps(doc).encode("utf-8")


def _json_string(value, as_bytes):
    value = value.encode("utf-8") if isinstance(value, str) else value
    if as_bytes:
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value.decode("utf-8", errors="replace")


def predict_response(outputs: Dict[str, np.ndarray], row_format: bool) -> bytes:
    """The JSON body answering a predict request: `{"predictions": ...}` (row) or `{"outputs": ...}` (columnar).

    Args:
        outputs: output name -> array (batch first).
        row_format: the request used `instances`.
    """
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    numpy_ok = all(map(_orjson_writes, arrays.values()))  # one writer for the whole body
    values = {name: _json_values(name, arrays[name], numpy_ok) for name in names}
    if not row_format:
        return _dumps({"outputs": values[names[0]] if len(names) == 1 else values}, numpy_ok)
    batch = None
    for name in names:
        shape = np.shape(outputs[name])
        if not shape:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and shape[0] != batch:
            raise invalid(f"Tensor name: {name} has inconsistent batch size: {shape[0]} expecting: {batch}")
        batch = shape[0]
    predictions = values[names[0]] if len(names) == 1 else [{n: values[n][i] for n in names} for i in range(batch)]
    return _dumps({"predictions": predictions}, numpy_ok)
