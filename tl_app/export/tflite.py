"""TFLite conversion of an export's tensor-input signature: float32, dynamic range, float16, int8.

The converted model is the export's signature (`TFLiteInput.signature`) with its
unknown dimensions fixed (batch stays resizable) and one output,
`probabilities` [1, C]; class names are in labels.txt beside it.

| mode | converter settings | weights | activations | input / output |
| --- | --- | --- | --- | --- |
| `none` | as is | float32 | float32 | float32 |
| `dynamic` | `Optimize.DEFAULT` | int8 | float32 (int8 on the fly) | float32 |
| `float16` | + `supported_types=[float16]` | float16 | float32 | float32 |
| `int8` | + representative data, `TFLITE_BUILTINS_INT8` only | int8 (one scale per channel, or per layer where its channels' scales are alike) | int8 | uint8 float inputs (int ids stay int32); uint8 probabilities |

int8 calibrates activation ranges on samples of the recipe's training data
(MediaPipe Model Maker's `for_int8` uses uint8 in and out likewise). When the
recipe declares its input's value range (pixels 0..255), the calibration pins
the input quantization to it, so uint8 pixels go in unchanged. The converter
quantizes weights per output channel; `tflite_granularity` then gives one scale
to each layer whose channels lose at most 1.5 bits on average by it, which saves
24 bytes of quantization parameters per channel of those layers.

Examples:
    >>> parse_modes("dynamic,int8")
    ['dynamic', 'int8']
    >>> parse_modes("all")
    ['none', 'dynamic', 'float16', 'int8']
"""
import re
import warnings

from tl_app import log
from tl_app.errors import UserError
from tl_app.export import tflite_granularity

MODES = ("none", "dynamic", "float16", "int8")
FILE_NAMES = {"none": "float32.tflite", "dynamic": "dynamic.tflite", "float16": "float16.tflite",
              "int8": "int8.tflite"}
OUTPUT = "probabilities"
DEFAULT_CALIBRATION_SAMPLES = 200
# The converter's message for an op with no TFLite kernel, e.g. "'tf.DecodeJpeg' op is neither a custom op nor a flex op".
_MISSING_OP = re.compile(r"'(?:tf|tfl|tf_text)\.([A-Za-z0-9_>]+)' op is neither a custom op nor a flex op")
_UNSUPPORTED_INT8 = re.compile(r"'tfl\.([A-Za-z0-9_]+)' op .*?(?:quantiz|int8|type)", re.IGNORECASE)


def parse_modes(text, given=None):
    """`none|dynamic|float16|int8`, a comma-separated list of them, or `all` -> the modes in MODES order.

    Args:
        text: the value given.
        given: how the user gave it, for the message (default `--quantize TEXT`).
    """
    names = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    unknown = [name for name in names if name not in MODES + ("all",)]
    if unknown or not names:
        raise UserError(f"{given or '--quantize ' + str(text)}: unknown quantization mode"
                        f" '{unknown[0] if unknown else text}'; choose {', '.join(MODES)} or all (several:"
                        " comma-separated, e.g. dynamic,int8).", key="tflite")
    chosen = set(MODES) if "all" in names else set(names)
    return [mode for mode in MODES if mode in chosen]


def signature_inputs(loaded, spec):
    """{input name: tf.TensorSpec [None, ...]} of the signature to convert, unknown dimensions fixed by `spec`."""
    import tensorflow as tf

    signature = loaded.signatures[spec.signature]
    inputs = {}
    for name, tensor in signature.structured_input_signature[1].items():
        shape = spec.shapes.get(name) or tensor.shape.as_list()[1:]
        if any(dim is None for dim in shape):
            raise ValueError(f"input '{name}' of {spec.signature} has unknown dimensions {tensor.shape}; "
                             "TFLiteInput.shapes must fix them")
        inputs[name] = tf.TensorSpec([None, *shape], tensor.dtype, name=name)
    return inputs


def probabilities_function(loaded, spec):
    """A concrete function: the signature's inputs (fixed shapes) -> {"probabilities": ...} only."""
    import tensorflow as tf

    signature = loaded.signatures[spec.signature]
    inputs = signature_inputs(loaded, spec)
    names = list(inputs)

    @tf.function(input_signature=list(inputs.values()), autograph=False)  # no control flow to convert
    def probabilities(*tensors):
        return {OUTPUT: signature(**dict(zip(names, tensors)))[OUTPUT]}

    return probabilities.get_concrete_function()


def pin_value_range(samples, spec):
    """Calibration samples whose first float input holds `spec.value_range`'s ends once (one value each), so
    the calibrated input range is exactly that range. The other samples are left as they are."""
    import numpy as np

    if spec.value_range is None or not samples:
        return samples
    low, high = spec.value_range
    first = dict(samples[0])
    for name, value in first.items():
        if np.issubdtype(value.dtype, np.floating) and value.size >= 2:
            pinned = np.array(value, copy=True)
            pinned.flat[0], pinned.flat[1] = low, high
            first[name] = pinned
    return [first, *samples[1:]]


def _int8_settings(converter, function, samples):
    import tensorflow as tf

    converter.representative_dataset = lambda: (dict(sample) for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if all(arg.dtype.is_floating for arg in function.structured_input_signature[0]):
        converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8


def convert(loaded, spec, mode, calibration=None, source="the export"):
    """The `.tflite` bytes of `loaded`'s signature `spec.signature` in quantization `mode`.

    Args:
        loaded: the export, as `tf.saved_model.load` returns it.
        spec: the recipe's `TFLiteInput`.
        mode: one of MODES.
        calibration: int8 only: a list of {input name: numpy array [1, ...]} (see `pin_value_range`).
        source: the export's path, for messages.

    Raises:
        UserError naming the op when the signature has an op TFLite cannot run.
    """
    import tensorflow as tf

    from tl_app.quiet import stderr_silenced

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    function = probabilities_function(loaded, spec)
    # The converter saves its trackable object as a SavedModel first: a module holding only this function's
    # variables saves in a fraction of the time the whole export (every signature) takes. (Without one it
    # would freeze the function directly, but write no SignatureDef: inputs would lose their names.)
    holder = tf.Module()
    holder.variables_of_signature = list(function.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
    if mode != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if not calibration:
            raise ValueError("int8 needs calibration samples")
        _int8_settings(converter, function, calibration)
    try:
        # The converter logs MLIR passes on fd 2 and its int8 calibrator warns that tf.lite.Interpreter is
        # deprecated (it uses it internally); what went wrong is in the exception.
        with stderr_silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            content = converter.convert()
    except Exception as exc:  # ConverterError and friends: name the op, not the MLIR dump
        raise conversion_error(exc, source, spec.signature, mode) from None
    if mode == "int8":
        content, merged = tflite_granularity.per_tensor_where_alike(content)
        if merged:
            log.info(f"int8: one weight scale for {len(merged)} layer(s) whose channel scales are alike"
                     f" ({sum(layer.channels for layer in merged)} channels); the others keep one per channel")
    return content


def conversion_error(exc, source, signature, mode):
    """A UserError for a failed conversion: which op, and what to do."""
    message = str(exc)
    missing = sorted(set(_MISSING_OP.findall(message)))
    if missing:
        ops = f"op {missing[0]} has" if len(missing) == 1 else f"ops {', '.join(missing)} have"
        return UserError(f"{source}: signature '{signature}' cannot be converted to TFLite: {ops} no TFLite kernel."
                         " Give the recipe a signature on the tensors its model computes on (the client decodes or"
                         " tokenizes) and return it from Recipe.tflite_input(); see docs/tflite.md.")
    if mode == "int8":
        ops = sorted(set(_UNSUPPORTED_INT8.findall(message)))
        which = f" (op {', '.join(ops)})" if ops else ""
        first = message.strip().splitlines()[0][:200] if message.strip() else type(exc).__name__
        return UserError(f"{source}: integer-only int8 conversion failed{which}: {first}. Use --quantize dynamic or"
                         " float16 for this model.")
    first = message.strip().splitlines()[0][:300] if message.strip() else type(exc).__name__
    return UserError(f"{source}: signature '{signature}' cannot be converted to TFLite ({mode}): {first}")
