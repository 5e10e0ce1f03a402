"""A TFLite package of an export: converted models, labels, input.json and their evaluation, as a new version.

    saved_models/<model>-tflite/<N>/
      float32.tflite dynamic.tflite float16.tflite int8.tflite   (the modes asked for)
      labels.txt          class names, one a line (index = output position)
      input.json          per model: input and output names, shapes, dtypes, quantization; what the client does first
      evaluation.json     per model and for the float SavedModel: size, test accuracy, agreement, p50 latency
      vocab.txt tokenizer.json                                  (text models: the tokenizer the client runs)

The package is written to a hidden temporary directory beside the versions and
renamed into place when complete (`savedmodel.publish`); the SavedModel it
comes from is only read. TF Serving ignores the directory: it has no
saved_model.pb.

Examples:
    >>> from tl_app.api import recipe_of_export
    >>> package = write_tflite_package("saved_models/digits/1", ["dynamic"],
    ...                                recipe_of_export("saved_models/digits/1"))  # doctest: +SKIP
    >>> package.path  # doctest: +SKIP
    'saved_models/digits-tflite/1'
"""
import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import List

import numpy as np

from tl_app import atomic, log
from tl_app.errors import UserError
from tl_app.export import savedmodel, tflite
from tl_app.export.saved_export import load_saved_model, read_labels
from tl_app.export.tflite_input import feed_single_input

INPUT_JSON = "input.json"
EVALUATION_JSON = "evaluation.json"
TFLITE_SUFFIX = "-tflite"
TMP_PREFIX = ".tmp-tflite-"  # a package being written (owner-tagged: the next conversion removes a dead one's)
SCRATCH_PREFIX = "tl-app-tflite-"  # converter scratch in the system's temporary directory


@dataclass
class TFLitePackage:
    """What `write_tflite_package` wrote: the version directory and, when evaluated, the rows of the table."""

    path: str
    files: dict
    rows: List[dict] = field(default_factory=list)


def package_base(export_dir):
    """`saved_models/<model>-tflite` for the export `saved_models/<model>/<N>`."""
    model_dir = os.path.dirname(os.path.normpath(export_dir)) or os.path.dirname(os.path.abspath(export_dir))
    return model_dir + TFLITE_SUFFIX


def load_data(recipe, modes, evaluate):
    """The recipe's data (int8 calibrates on its training split; the evaluation uses its test split)."""
    try:
        return recipe.load_data()
    except UserError as exc:
        need = "--quantize int8 calibrates on the recipe's training data" if "int8" in modes else \
            "the evaluation runs on the recipe's test split"
        other = "" if "int8" in modes else ", or --no-evaluate"
        raise UserError(f"{need}, which cannot be loaded here ({str(exc).rstrip('.')}); pass --data-dir DIR with the"
                        f" data the model was trained on{other}.") from None


def calibration_samples(dataset, count, seed, feed):
    """`count` training examples drawn uniformly (seeded reservoir sample) as per-example {input: [1, ...]} feeds."""
    rng = np.random.default_rng(seed)
    kept = []
    for i, (inputs, _) in enumerate(dataset.as_numpy_iterator()):
        if len(kept) < count:
            kept.append(inputs)
        else:
            j = int(rng.integers(i + 1))
            if j < count:
                kept[j] = inputs
    if not kept:
        raise UserError("--quantize int8: the training split is empty, so nothing can calibrate; check --data-dir.")
    batch = feed(np.stack(kept) if not isinstance(kept[0], (bytes, str)) else np.asarray(kept, dtype=object))
    return [{name: value[i:i + 1] for name, value in batch.items()} for i in range(len(kept))]


def typed_feed(spec, loaded):
    """`spec.feed` (or the one-input default), its arrays cast to the signature's input dtypes."""
    inputs = tflite.signature_inputs(loaded, spec)
    feed = spec.feed
    if feed is None:
        if len(inputs) != 1:
            raise ValueError(f"{spec.signature} has {len(inputs)} inputs: TFLiteInput.feed must make them")
        feed = feed_single_input(*inputs)

    def typed(batch):
        return {name: np.asarray(value).astype(inputs[name].dtype.as_numpy_dtype) for name, value in feed(batch).items()}

    return typed


def rebuild_export(export_dir, recipe, class_names, scratch):
    """A temporary export of the model in `export_dir`, rebuilt from its Keras weights with today's signatures.

    For exports written before the signature TFLite converts existed (text exports before
    `serving_token_ids`): the recipe builds the model again (its pretrained base or preset must be at hand)
    and loads `assets.extra/model.weights.h5`.
    """
    from tl_app.recipe import DataSplits

    weights = savedmodel.keras_weights_path(export_dir)
    spec = recipe.tflite_input(export_dir)
    if not os.path.isfile(weights):
        raise UserError(f"{export_dir}: has no '{spec.signature}' signature to convert and no"
                        f" {savedmodel.ASSETS_EXTRA}/{savedmodel.KERAS_WEIGHTS} to rebuild it from; export the model"
                        " again with this version of tl_app.")
    log.info(f"{export_dir} has no '{spec.signature}' signature (exported before it existed): rebuilding the model"
             f" from its Keras weights ({savedmodel.KERAS_WEIGHTS}) and config")
    import keras

    keras.backend.clear_session(free_memory=False)  # fresh layer names: the weights file matches them
    model = recipe.build_model(DataSplits(None, None, None, list(class_names)))
    model.load_weights(weights)
    return savedmodel.export_model(model, recipe.serving_signatures(model, class_names),
                                   os.path.join(scratch, "rebuilt"), class_names, {}, {},
                                   extra_files=recipe.export_files(model))


def _input_description(spec, models, class_names):
    description = {
        "signature": spec.signature,
        "client": spec.client,
        "labels": "labels.txt",
        "classes": len(class_names),
        "output": "probabilities [1, classes]: index i is line i of labels.txt",
        "models": models,
    }
    if spec.value_range is not None:
        description["value_range"] = list(spec.value_range)
    if spec.files:
        description["files"] = sorted(spec.files)
    return description


def write_tflite_package(export_dir, modes, recipe, data=None, calibration_samples_count=None, evaluate=True,
                         latency_runs=None):
    """Convert `export_dir` in every mode of `modes`, evaluate, and publish the package; see the module docstring.

    Args:
        export_dir: a version directory written by tl_app (`saved_export.resolve_export`).
        modes: quantization modes (`tflite.parse_modes`).
        recipe: the Recipe the export was trained with (`tl_app.api.recipe_of_export`, or the run's).
        data: the recipe's `DataSplits` when at hand (a run); None loads them when int8 or `evaluate` needs them.
        calibration_samples_count: int8 calibration samples from the training split (default 200).
        evaluate: run every model on the test split and print the table (`tflite_report`).
        latency_runs: single-example calls timed per model (default `tflite_report.LATENCY_RUNS`).
    """
    from tl_app.export import tflite_report

    count = calibration_samples_count or tflite.DEFAULT_CALIBRATION_SAMPLES
    class_names = read_labels(export_dir)
    if data is None and ("int8" in modes or evaluate):
        data = load_data(recipe, modes, evaluate)
    base = package_base(export_dir)
    created_base = not os.path.isdir(base)
    staging = contextlib.ExitStack()  # closed last: the package's temporary goes unless it was published
    try:
        tmp = staging.enter_context(savedmodel.staged_version(base, TMP_PREFIX))
    except OSError as exc:
        raise UserError(f"{base}: cannot write the TFLite models there ({exc.strerror}); make it writable.") from None
    atomic.remove_stale(tempfile.gettempdir(), SCRATCH_PREFIX)
    scratch = atomic.make_temp_dir(tempfile.gettempdir(), SCRATCH_PREFIX)
    try:
        reference = load_saved_model(export_dir)
        spec = recipe.tflite_input(export_dir)
        source, converted_from = reference, export_dir
        if spec.signature not in reference.signatures:
            converted_from = rebuild_export(export_dir, recipe, class_names, scratch)
            source, spec = load_saved_model(converted_from), recipe.tflite_input(converted_from)
            if spec.signature not in source.signatures:
                raise UserError(f"{export_dir}: its model has no '{spec.signature}' entry point to convert (a recipe's"
                                " own build_model without the family's layer names?); see docs/tflite.md.")
        feed = typed_feed(spec, source)
        calibration = None
        if "int8" in modes:
            calibration = tflite.pin_value_range(
                calibration_samples(data.train, count, recipe.config.seed, feed), spec)
            log.info(f"int8: calibrating on {len(calibration)} training examples")
        files, models = {}, {}
        for mode in modes:
            content = tflite.convert(source, spec, mode, calibration, source=export_dir)
            files[mode] = os.path.join(tmp, tflite.FILE_NAMES[mode])
            with open(files[mode], "wb") as f:
                f.write(content)
            models[mode] = {"file": tflite.FILE_NAMES[mode], "size_bytes": len(content),
                            **tflite_report.describe(files[mode])}
            log.info(f"converted {mode}: {tflite.FILE_NAMES[mode]} ({tflite_report.human_size(len(content))})")
        _write_text(tmp, "labels.txt", "".join(f"{name}\n" for name in class_names))
        for name, content in spec.files.items():
            _write_text(tmp, name, content)
        description = _input_description(spec, models, class_names)
        description["source"] = export_dir
        thresholds = _thresholds(export_dir)
        if thresholds is not None:  # a multi-label export: the decisions its serving signature makes
            description["output"] = ("probabilities [1, labels] (sigmoid): label i applies when probabilities[i] >="
                                     " thresholds[i]; index i is line i of labels.txt")
            description["thresholds"] = thresholds
        _write_text(tmp, INPUT_JSON, json.dumps(description, indent=2) + "\n")
        rows = []
        if evaluate:
            report = tflite_report.evaluate(export_dir, reference, source, spec, feed, files, data, class_names,
                                            latency_runs, thresholds=thresholds)
            rows = report["rows"]
            _write_text(tmp, EVALUATION_JSON, json.dumps(report, indent=2) + "\n")
        final = savedmodel.publish(tmp, base)
        if rows:
            print(tflite_report.table(rows, final, export_dir, report), flush=True)
        log.info(f"TFLite models: {final} (from {export_dir})")
        return TFLitePackage(path=final, files={m: os.path.join(final, tflite.FILE_NAMES[m]) for m in modes},
                             rows=rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        staging.close()
        if created_base and not os.listdir(base):  # a failed first conversion leaves no empty <model>-tflite
            os.rmdir(base)


def _thresholds(export_dir):
    """A multi-label export's per-label thresholds (assets.extra/thresholds.json), or None."""
    path = os.path.join(export_dir, savedmodel.ASSETS_EXTRA, "thresholds.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)["thresholds"]


def _write_text(directory, name, content):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(content.encode("utf-8") if isinstance(content, str) else content)
