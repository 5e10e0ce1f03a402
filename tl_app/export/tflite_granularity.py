"""One weight scale per layer where its per-channel scales are alike: a smaller int8 file at the same accuracy.

The converter quantizes every convolution's and dense layer's weights per output
channel: each channel has its own float32 scale and an int64 zero point, and so
does the int32 bias computed with it (12 bytes each, twice per channel). For
MobileNetV2 that is 410 KB of a 2.75 MB int8 file. Per-tensor weights (one
scale) are what makes them cheaper, but the converter has one switch for the
whole model, and depthwise filters with their batch norms folded in have ranges
too different across channels for one scale (Krishnamoorthi 2018; on
Fashion-MNIST test accuracy falls from 0.896 to 0.21).

So the choice is made per layer from its weights, after conversion. The
per-tensor scale is the largest channel scale S = max(s_c); channel c then keeps
log2(S / s_c) fewer bits of precision. A convolution or dense layer goes
per-tensor when its channels lose at most `max_mean_bits` on average (default
1.5: a typical channel keeps 6.5 of its 8 bits); its int8 weights are
re-quantized to S (round(q * s_c / S)) and its int32 bias to the input scale
times S, so the activation quantization the converter calibrated is unchanged.
Which layers qualify is a property of the trained weights, not of layer names.
Depthwise convolutions always keep one scale per channel: each channel has only
its own few taps (9 for 3x3), so a coarse step cannot average out over a sum,
and those are the layers that fail per-tensor (above).

The default comes from a sweep on the image_folder acceptance export
(MobileNetV2, 96 px, Fashion-MNIST; float32 file 8,947,452 B, accuracy 0.8940;
per-channel int8 30.8%, 0.8965): at 1.0 bits 7 layers go per-tensor (30.4%,
0.8905), at 1.5 16 layers (29.8%, 0.8860), at 2.0 28 layers (28.9%, 0.8835):
a lower bound keeps more accuracy, a higher one saves more bytes; docs/tflite.md
has the table.

Example:
    >>> content = open("int8.tflite", "rb").read()              # doctest: +SKIP
    >>> smaller, merged = per_tensor_where_alike(content)        # doctest: +SKIP
    >>> [(layer.channels, layer.mean_bits_lost) for layer in merged][-1:]   # doctest: +SKIP
    [(1280, 0.92)]
"""
import dataclasses

# Ops whose int8 kernels take weights with one scale or one per output channel (DEPTHWISE_CONV_2D stays per
# channel: see above), and where their inputs hold the weights and the bias.
_OPS = {"CONV_2D", "FULLY_CONNECTED"}
_WEIGHTS, _BIAS = 1, 2
DEFAULT_MAX_MEAN_BITS = 1.5


@dataclasses.dataclass(frozen=True)
class MergedLayer:
    """A layer whose weights went per-tensor: its weight tensor's name, output channels, mean bits lost."""

    name: str
    channels: int
    mean_bits_lost: float


def bits_lost(scales):
    """Per channel, the bits of precision one scale (the largest) costs: log2(max(scales) / scale).

    Example:
        >>> [float(b) for b in bits_lost([0.5, 1.0, 0.25])]
        [1.0, 0.0, 2.0]
    """
    import numpy as np

    scales = np.asarray(scales, dtype=np.float64)
    return np.log2(scales.max() / np.maximum(scales, np.finfo(np.float64).tiny))


def per_tensor_where_alike(content, max_mean_bits=DEFAULT_MAX_MEAN_BITS):
    """`content` (an integer-only int8 `.tflite`) with per-tensor weights wherever channels lose <= max_mean_bits.

    Args:
        content: the converter's int8 model bytes (per-channel weights).
        max_mean_bits: the mean over a layer's channels of log2(S / s_c) up to which it goes per-tensor.

    Returns:
        (new model bytes, [MergedLayer, ...]); `content` itself when no layer qualifies.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    op_names = {index: flatbuffer_utils.opcode_to_name(model, index) for index in range(len(model.operatorCodes))}
    uses = _buffer_uses(model)
    merged = []
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if op_names[op.opcodeIndex] not in _OPS or len(op.inputs) <= _WEIGHTS:
                continue
            weights = subgraph.tensors[op.inputs[_WEIGHTS]]
            has_bias = len(op.inputs) > _BIAS and op.inputs[_BIAS] >= 0
            bias = subgraph.tensors[op.inputs[_BIAS]] if has_bias else None
            if not _per_channel_int8(weights, schema) or uses[weights.buffer] != 1 or not _inline(model, weights, 1):
                continue
            if bias is not None and (bias.type != schema.TensorType.INT32 or uses[bias.buffer] != 1
                                     or not _inline(model, bias, 4)
                                     or len(bias.quantization.scale) != len(weights.quantization.scale)):
                continue
            channels = len(weights.quantization.scale)
            lost = float(bits_lost(weights.quantization.scale).mean())
            if lost > max_mean_bits:
                continue
            _merge(model, weights, bias)
            name = weights.name.decode() if isinstance(weights.name, bytes) else str(weights.name)
            merged.append(MergedLayer(name=name, channels=channels, mean_bits_lost=round(lost, 3)))
    if not merged:
        return content, []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), merged


def _buffer_uses(model):
    """{buffer index: how many tensors read it} (a shared constant is left alone)."""
    uses = {}
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            uses[tensor.buffer] = uses.get(tensor.buffer, 0) + 1
    return uses


def _inline(model, tensor, itemsize):
    """The tensor's values are in its buffer (not at an offset, as in models over 2 GB)."""
    import numpy as np

    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) == int(np.prod(tensor.shape)) * itemsize


def _per_channel_int8(tensor, schema):
    quantization = tensor.quantization
    return (tensor.type == schema.TensorType.INT8 and quantization is not None and quantization.scale is not None
            and len(quantization.scale) > 1 and not any(quantization.zeroPoint))


def _merge(model, weights, bias):
    """Re-quantize `weights` (and its `bias`) in place to one scale, the largest of its channels'."""
    import numpy as np

    quantization = weights.quantization
    scales = np.asarray(quantization.scale, dtype=np.float64)
    largest = scales.max()
    axis = quantization.quantizedDimension
    shape = [1] * len(weights.shape)
    shape[axis] = len(scales)
    factor = scales / largest  # each channel's old step in units of the new one
    buffer = model.buffers[weights.buffer]
    values = np.frombuffer(bytes(buffer.data), dtype=np.int8).reshape(weights.shape).astype(np.float64)
    requantized = np.clip(np.rint(values * factor.reshape(shape)), -127, 127).astype(np.int8)
    buffer.data = np.frombuffer(requantized.tobytes(), dtype=np.uint8)
    _one_scale(quantization, largest)
    if bias is not None:
        bias_buffer = model.buffers[bias.buffer]
        bias_scales = np.asarray(bias.quantization.scale, dtype=np.float64)
        # The converter's bias scale is the input scale times the weight scale; the new one is the input scale
        # (one value, read back as the mean over channels) times the new weight scale.
        new_bias_scale = (bias_scales / scales).mean() * largest
        values = np.frombuffer(bytes(bias_buffer.data), dtype="<i4").astype(np.float64)
        info = np.iinfo(np.int32)
        rescaled = np.clip(np.rint(values * bias_scales / new_bias_scale), info.min, info.max).astype("<i4")
        bias_buffer.data = np.frombuffer(rescaled.tobytes(), dtype=np.uint8)
        _one_scale(bias.quantization, new_bias_scale)


def _one_scale(quantization, scale):
    import numpy as np

    quantization.scale = np.array([scale], dtype=np.float32)
    quantization.zeroPoint = np.array([0], dtype=np.int64)
    quantization.quantizedDimension = 0
