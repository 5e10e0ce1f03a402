"""The converted models against the float SavedModel on the test split: size, accuracy, agreement, p50 latency.

Every model sees every test example once, at batch 1, in the LiteRT
interpreter (`litert_eval.LiteRTModel`); the SavedModel's predictions are the
reference for agreement (the share of examples where both pick the same class).
Latency is the median of `LATENCY_RUNS` single-example calls on inputs already
in each model's types, the SavedModel through the same signature the TFLite
models were converted from, both with every CPU core.
"""
import os
import platform

import numpy as np

from tl_app.export.litert_eval import LiteRTModel, classification_metrics, p50_ms, predicted_labels
from tl_app.export.saved_export import saved_model_bytes

LATENCY_RUNS = 100
LATENCY_EXAMPLES = 20  # distinct test examples the timed calls cycle through
EVAL_BATCH = 64  # SavedModel reference batch (the TFLite models run each example alone)


def human_size(size):
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def cpu_name():
    """The CPU's model name (Linux: /proc/cpuinfo), else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(path):
    """Inputs and outputs of the .tflite file at `path` (names, shapes, dtypes, quantization)."""
    return LiteRTModel.from_file(path, threads=1).describe()


def _reference_call(reference, spec, feed):
    """Batch of raw inputs -> the float SavedModel's probabilities, through `spec.reference_signature`."""
    import tensorflow as tf

    signature = reference.signatures[spec.reference_signature]
    if spec.reference is None:
        make = feed
    else:  # the reference takes the raw inputs (e.g. strings) as its one input
        (name,) = signature.structured_input_signature[1]

        def make(batch):
            return {name: batch}

    def call(batch):
        return signature(**{k: tf.constant(v) for k, v in make(batch).items()})["probabilities"].numpy()

    return call


def evaluate(export_dir, reference, source, spec, feed, files, data, class_names, latency_runs=None, thresholds=None):
    """The evaluation report (what evaluation.json holds); see the module docstring.

    Args:
        export_dir: the export evaluated against (its path, for the report).
        reference: the export loaded (`tf.saved_model.load`): the float reference.
        source: the SavedModel the models were converted from (the export itself, or its rebuild).
        spec: the recipe's `TFLiteInput`.
        feed: batch of raw inputs -> typed signature inputs (`tflite_package.typed_feed`).
        files: mode -> path of the .tflite file.
        data: the recipe's `DataSplits` (its test split is used).
        class_names: index -> name.
        latency_runs: timed calls per model (default LATENCY_RUNS).
        thresholds: a multi-label export's per-label thresholds (thresholds.json), else None.
    """
    import tensorflow as tf

    runs = latency_runs or LATENCY_RUNS
    models = {mode: LiteRTModel.from_file(path) for mode, path in files.items()}
    reference_call = _reference_call(reference, spec, feed)
    labels, expected, predicted, timed = [], [], {mode: [] for mode in files}, []
    for inputs, batch_labels in data.test.batch(EVAL_BATCH).as_numpy_iterator():
        labels.append(batch_labels)
        expected.append(reference_call(inputs))
        feeds = feed(inputs)
        for i in range(len(batch_labels)):
            one = {name: value[i:i + 1] for name, value in feeds.items()}
            if len(timed) < LATENCY_EXAMPLES:
                timed.append(one)
            for mode, model in models.items():
                predicted[mode].append(model.predict(one))
    labels, expected = np.concatenate(labels), np.concatenate(expected)
    multi = labels.ndim == 2  # multi-hot labels: agreement is the share of identical label sets
    reference_ids = predicted_labels(expected, thresholds) if multi else expected.argmax(-1)
    signature = source.signatures[spec.signature]
    tensors = [{name: tf.constant(value) for name, value in one.items()} for one in timed]
    rows = [{"model": "SavedModel", "mode": "savedmodel", "file": export_dir, "size_bytes": saved_model_bytes(export_dir),
             **classification_metrics(labels, expected, class_names, thresholds), "agreement": 1.0,
             "p50_ms": p50_ms(lambda one: signature(**one), tensors, runs)}]
    float_size = os.path.getsize(files["none"]) if "none" in files else None
    for mode, model in models.items():
        probabilities = np.concatenate(predicted[mode])
        ready = [model.quantize(one) for one in timed]
        size = os.path.getsize(files[mode])
        rows.append({"model": "TFLite", "mode": mode, "file": os.path.basename(files[mode]), "size_bytes": size,
                     "size_vs_float32": size / float_size if float_size else None,
                     **classification_metrics(labels, probabilities, class_names, thresholds),
                     "agreement": float(np.mean(np.all(predicted_labels(probabilities, thresholds) == reference_ids, -1)
                                                if multi else probabilities.argmax(-1) == reference_ids)),
                     "p50_ms": p50_ms(model.run, ready, runs)})
    return {"source": export_dir, "split": data.test_split_name, "examples": int(len(labels)),
            "reference_signature": spec.reference_signature, "latency_signature": spec.signature,
            "latency": {"batch": 1, "runs": runs, "threads": os.cpu_count(), "cpu": cpu_name()},
            "rows": rows}


def table(rows, path, export_dir, report):
    """The printed table: one line per model, the SavedModel first."""
    header = ("model", "file", "size", "of float", "accuracy", "agreement", "p50 ms")
    lines = []
    for row in rows:
        ratio = row.get("size_vs_float32")
        lines.append((row["mode"] if row["model"] == "TFLite" else "SavedModel",
                      row["file"] if row["model"] == "TFLite" else "saved_model.pb + variables",
                      human_size(row["size_bytes"]), f"{ratio:.0%}" if ratio else "",
                      f"{row['accuracy']:.4f}", "" if row["model"] == "SavedModel" else f"{row['agreement']:.4f}",
                      f"{row['p50_ms']:.2f}"))
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]

    def fmt(cells):
        return "  " + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    title = (f"TFLite models in {path} (from {export_dir}); {report['split']} split, {report['examples']} examples;"
             f" latency at batch 1, {report['latency']['threads']} threads")
    return "\n".join([title, fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])
