"""Running converted models with LiteRT, and measuring them against the float SavedModel.

`LiteRTModel` wraps `ai_edge_litert.interpreter.Interpreter` (the successor of
`tf.lite.Interpreter`): it quantizes float inputs for an integer model with the
scale and zero point the model declares and hands back float probabilities.
`classification_metrics` is the one place the figures are computed from labels
and probabilities; `p50_ms` times single calls.

Examples:
    >>> model = LiteRTModel.from_file("saved_models/digits-tflite/1/int8.tflite")  # doctest: +SKIP
    >>> model.predict({"pixels": pixels[:1]}).shape  # doctest: +SKIP
    (1, 10)
"""
import os
import statistics
import time

import numpy as np

LATENCY_WARMUP = 5


def classification_metrics(labels, probabilities, class_names, thresholds=None):
    """Test figures of a classifier from what it predicted: accuracy and macro-averaged F1.

    Multi-label (`labels` multi-hot [N, L]): a label is predicted when its probability is at least its
    `thresholds` entry (the export's thresholds.json; 0.5 without); `accuracy` is then subset accuracy
    (every label right), and `f1_micro` is added.

    Args:
        labels: int [N] true class ids, or multi-hot [N, L].
        probabilities: float [N, C] predicted probabilities.
        class_names: index -> name (C of them).
        thresholds: float [L] per-label thresholds (multi-label only).

    Examples:
        >>> classification_metrics([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], ["a", "b"])["accuracy"]
        0.6666666666666666
        >>> classification_metrics([[1, 1], [0, 1]], [[0.9, 0.3], [0.1, 0.8]], ["a", "b"], [0.5, 0.25])["accuracy"]
        1.0
    """
    from sklearn.metrics import accuracy_score, f1_score

    labels = np.asarray(labels)
    if labels.ndim == 2:
        predicted = predicted_labels(probabilities, thresholds)
        labels = labels.astype(bool)
        return {"accuracy": float(accuracy_score(labels, predicted)),
                "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
                "f1_micro": float(f1_score(labels, predicted, average="micro", zero_division=0))}
    predicted = np.asarray(probabilities).argmax(axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=list(range(len(class_names))), average="macro",
                                   zero_division=0)),
    }


def predicted_labels(probabilities, thresholds=None):
    """bool [N, L]: multi-label decisions, each label's probability at least its threshold (0.5 when None)."""
    probabilities = np.asarray(probabilities, np.float32)
    cut = np.full(probabilities.shape[-1], 0.5, np.float32) if thresholds is None else np.asarray(thresholds, np.float32)
    return probabilities >= cut


def p50_ms(call, feeds, runs):
    """Median wall time in milliseconds of `call(feed)` over `runs` calls cycling through `feeds`, after a warmup."""
    for i in range(LATENCY_WARMUP):
        call(feeds[i % len(feeds)])
    times = []
    for i in range(runs):
        started = time.perf_counter()
        call(feeds[i % len(feeds)])
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def _quantization(detail):
    scale, zero_point = detail["quantization"]
    return (float(scale), int(zero_point)) if scale else None


class LiteRTModel:
    """A `.tflite` classifier in the LiteRT interpreter: {input name: array [1, ...]} -> float probabilities [1, C].

    Args:
        interpreter: an `ai_edge_litert.interpreter.Interpreter`.
    """

    def __init__(self, interpreter):
        self.interpreter = interpreter
        self.runner = interpreter.get_signature_runner()
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()

    @classmethod
    def from_file(cls, path, threads=None):
        """Load `path` with `threads` CPU threads (default: every core, as TensorFlow uses them)."""
        from ai_edge_litert.interpreter import Interpreter

        from tl_app.quiet import stderr_silenced

        with stderr_silenced():  # LiteRT announces its XNNPACK delegate on fd 2
            interpreter = Interpreter(model_path=path, num_threads=threads or os.cpu_count())
            interpreter.allocate_tensors()
            return cls(interpreter)

    def quantize(self, feeds):
        """`feeds` as the model's input types: float values quantized for an integer input."""
        ready = {}
        for name, value in feeds.items():
            detail = self.inputs[name]
            dtype, quantization = detail["dtype"], _quantization(detail)
            if quantization and np.issubdtype(np.asarray(value).dtype, np.floating):
                scale, zero_point = quantization
                limits = np.iinfo(dtype)
                value = np.clip(np.round(np.asarray(value) / scale + zero_point), limits.min, limits.max)
            ready[name] = np.asarray(value).astype(dtype)
        return ready

    def run(self, ready):
        """One call on inputs already in the model's types (what a device does); the raw output."""
        return self.runner(**ready)

    def predict(self, feeds):
        """Float probabilities for one example's `feeds` (quantized first when the model is integer)."""
        (name, detail), = self.outputs.items()
        output = self.run(self.quantize(feeds))[name]
        quantization = _quantization(detail)
        if quantization:
            scale, zero_point = quantization
            output = (output.astype(np.float32) - zero_point) * scale
        return np.asarray(output, np.float32)

    def describe(self):
        """Inputs and outputs for input.json: name, shape, dtype, quantization (scale, zero point) if any."""

        def one(name, detail, formula):
            entry = {"name": name, "shape": [int(d) for d in detail["shape"]],
                     "dtype": np.dtype(detail["dtype"]).name}
            quantization = _quantization(detail)
            if quantization:
                entry["quantization"] = {"scale": quantization[0], "zero_point": quantization[1],
                                         "formula": formula}
            return entry

        return {"inputs": [one(n, d, "q = round(x / scale) + zero_point") for n, d in self.inputs.items()],
                "outputs": [one(n, d, "x = (q - zero_point) * scale") for n, d in self.outputs.items()]}
