"""One loaded SavedModel version: its signatures as TF Serving describes them, predict, warmup replay.

Signature structure (input and output names, dtypes, shapes, method names) comes from the
`SignatureDef`s of `saved_model.pb`, exactly what TF Serving's metadata reports; the functions that
run come from `tf.saved_model.load`. No Keras is needed: exports carry their preprocessing in the
graph. Text exports use TensorFlow Text's tokenizer ops, whose kernels `load_custom_ops` registers
from TF-Text's op libraries (without importing `tensorflow_text`, which would import Keras).

Examples:
    >>> servable = Servable.load("digits", 1, "saved_models/digits/1")  # doctest: +SKIP
    >>> sorted(servable.predict("", {"pixels": np.zeros([2, 8, 8], np.float32)}))  # doctest: +SKIP
    ['class_id', 'class_name', 'probabilities']
"""
import glob
import importlib.util
import os
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from tl_app.serve.errors import ServingError, from_tensorflow, invalid

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
_ops_lock = threading.Lock()
_ops_loaded = False


def load_custom_ops():
    """Register TensorFlow Text's kernels (text exports tokenize in the graph); a no-op without tensorflow_text."""
    global _ops_loaded
    import tensorflow as tf

    with _ops_lock:
        if _ops_loaded:
            return
        spec = importlib.util.find_spec("tensorflow_text")
        if spec is not None and spec.origin:
            ops_dir = os.path.join(os.path.dirname(spec.origin), "python", "ops")
            for library in sorted(glob.glob(os.path.join(ops_dir, "*.so"))):
                tf.load_op_library(library)
        _ops_loaded = True


@dataclass
class TensorInfo:
    """A signature input or output: its tensor dtype (a DataType name) and shape (-1: any; None: any rank)."""

    dtype: str
    shape: Optional[List[int]]

    def shape_text(self):
        return "[?]" if self.shape is None else "[" + ",".join(str(d) for d in self.shape) + "]"


@dataclass
class Signature:
    name: str
    method_name: str
    inputs: Dict[str, TensorInfo]
    outputs: Dict[str, TensorInfo]
    fn: object = None  # the ConcreteFunction that runs it

    def input_dtypes(self):
        return {name: info.dtype for name, info in self.inputs.items()}


def _tensor_info(proto):
    from tensorflow.core.framework import types_pb2

    shape = None if proto.tensor_shape.unknown_rank else [int(d.size) for d in proto.tensor_shape.dim]
    return TensorInfo(dtype=types_pb2.DataType.Name(proto.dtype), shape=shape)


def read_signature_defs(export_dir):
    """`saved_model.pb`'s SignatureDef map (name -> SignatureDef proto) of its `serve` meta graph."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph.signature_def
    raise ValueError(f"{export_dir}: no meta graph tagged 'serve'")


class Servable:
    """A loaded version of a model.

    Args:
        name: the model's name.
        version: its version number.
        path: the version directory.
        signature_defs: name -> SignatureDef proto (for metadata).
        signatures: name -> `Signature` with its function.
        max_batch_size: requests with a larger dim 0 are refused (INVALID_ARGUMENT); None: no limit.
        batcher: a `batching.Batcher` that groups concurrent requests into one call; None: each runs alone.
    """

    def __init__(self, name, version, path, signature_defs, signatures, max_batch_size=None, batcher=None):
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = signature_defs
        self.signatures = signatures
        self.max_batch_size = max_batch_size
        self.batcher = batcher

    @classmethod
    def load(cls, name, version, path, max_batch_size=None, batcher=None):
        """Load `path` (a SavedModel directory) with its functions; errors as TensorFlow raises them."""
        import tensorflow as tf

        load_custom_ops()
        defs = read_signature_defs(path)
        loaded = tf.saved_model.load(path, tags=["serve"])
        signatures = {}
        for key, proto in defs.items():
            if key.startswith("__"):  # __saved_model_init_op: not callable, but reported in metadata as TF Serving does
                continue
            signatures[key] = Signature(
                name=key, method_name=proto.method_name,
                inputs={k: _tensor_info(v) for k, v in proto.inputs.items()},
                outputs={k: _tensor_info(v) for k, v in proto.outputs.items()},
                fn=loaded.signatures.get(key))
        servable = cls(name, version, path, defs, signatures, max_batch_size, batcher)
        servable._loaded = loaded  # keeps the functions' variables alive
        return servable

    # ---- signatures ----------------------------------------------------------------------
    def signature(self, name, missing_code="INVALID_ARGUMENT"):
        """The signature `name` ("" = serving_default), or ServingError naming the ones there are.

        Args:
            name: the signature name from the request.
            missing_code: TF Serving's code for an unknown one (its REST path says INVALID_ARGUMENT,
                its gRPC Predict FAILED_PRECONDITION).
        """
        key = name or DEFAULT_SIGNATURE
        signature = self.signatures.get(key)
        if signature is None or signature.fn is None:
            valid = ", ".join(sorted(k for k, s in self.signatures.items() if s.fn is not None))
            if missing_code == "INVALID_ARGUMENT":
                message = f'Serving signature name: "{key}" not found in signature def'
            else:
                message = f'Serving signature key "{key}" not found.'
            raise ServingError(missing_code, f"{message} (signatures of {self.name} version {self.version}: {valid})")
        return signature

    def input_dtypes(self, signature_name):
        return self.signature(signature_name).input_dtypes()

    # ---- predict ---------------------------------------------------------------------------
    def _check_inputs(self, signature, inputs):
        wanted, sent = set(signature.inputs), set(inputs)
        if wanted != sent:
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sorted(sent))}}}) != "
                f"len({{{','.join(sorted(wanted))}}}). Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}.")
        for name, array in inputs.items():
            info = signature.inputs[name]
            _check_dtype(name, info, array)
            if info.shape is not None:
                ok = array.ndim == len(info.shape) and all(w < 0 or w == g for w, g in zip(info.shape, array.shape))
                if not ok:
                    raise invalid(f"input '{name}' of signature '{signature.name}' takes shape {info.shape_text()} "
                                  f"({info.dtype}; -1: any size); got [{','.join(map(str, array.shape))}]")
            if self.max_batch_size is not None and array.ndim and array.shape[0] > self.max_batch_size:
                raise invalid(f"input '{name}': a batch of {array.shape[0]} examples is over this server's limit of "
                              f"{self.max_batch_size} (tl-app serve --max-batch-size); split the request")

    def predict(self, signature_name, inputs, output_filter=(), missing_code="INVALID_ARGUMENT"):
        """Run a signature on `inputs` (name -> numpy array); returns output name -> numpy array.

        Args:
            signature_name: "" or a signature name.
            inputs: exactly the signature's inputs, with its dtypes and compatible shapes.
            output_filter: output names to return (default: all), as gRPC's `output_filter`.
            missing_code: the code for an unknown signature (see `signature`).
        """
        signature = self.signature(signature_name, missing_code)
        self._check_inputs(signature, inputs)
        wanted = _filtered_outputs(signature, output_filter)

        def call(batch):
            return self._call(signature, batch, wanted)

        if self.batcher is None or not inputs or any(np.ndim(value) == 0 for value in inputs.values()):
            return call(inputs)
        return self.batcher.run(call, (id(self), signature.name, tuple(wanted)), inputs)

    @staticmethod
    def _call(signature, inputs, wanted):
        import tensorflow as tf

        try:
            outputs = signature.fn(**{name: tf.constant(value) for name, value in inputs.items()})
        except tf.errors.OpError as exc:
            raise from_tensorflow(exc) from None
        except (TypeError, ValueError) as exc:
            raise invalid(f"signature '{signature.name}' cannot take these inputs: {str(exc).splitlines()[0]}") from None
        return {name: outputs[name].numpy() for name in wanted}

    def warmup(self):
        """Replay the version's warmup requests (`assets.extra/tf_serving_warmup_requests`); returns how many.

        Raises ValueError (a bad file) or ServingError (a request that fails): the version is not served.
        """
        from tl_app.export.warmup import read_warmup_requests
        from tl_app.serve.tensor_protos import from_proto

        requests = read_warmup_requests(self.path)
        for index, request in enumerate(requests):
            inputs = {name: from_proto(proto) for name, proto in request.inputs.items()}
            try:
                self.predict(request.model_spec.signature_name, inputs, list(request.output_filter),
                             missing_code="FAILED_PRECONDITION")
            except ServingError as exc:
                raise ServingError(exc.code, f"warmup request {index}: {exc.message}") from None
        return len(requests)


def _check_dtype(name, info, array):
    from tl_app.serve.json_tensor import DTYPES

    expected = DTYPES.get(info.dtype, (None, info.dtype))[0]
    if expected is object:
        ok = array.dtype == object or array.dtype.kind == "S"
    else:
        ok = expected is not None and array.dtype == np.dtype(expected)
    if not ok:
        got = "string" if array.dtype.kind in "OSU" else array.dtype.name
        raise invalid(f"input '{name}' expects {DTYPES.get(info.dtype, (None, info.dtype))[1]} ({info.dtype}) "
                      f"but {got} is provided")


def _filtered_outputs(signature, output_filter):
    if not output_filter:
        return list(signature.outputs)
    seen = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                          f"{{{','.join(sorted(signature.outputs))}}}.")
        if alias in seen:
            raise invalid(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen
