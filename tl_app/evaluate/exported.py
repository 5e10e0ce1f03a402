"""Evaluating an export: the SavedModel's `serving_default` signature on data its saved config names.

`tl-app evaluate MODEL_DIR` takes a version directory (`saved_models/digits/3`)
or a model directory (its newest version). The export's `assets.extra/config.json`
names the recipe (`recipe`, or `recipe_file` for a recipe from a file) and its
config, so the data loads as it did for the run (`--data-dir` replaces the data
location); `labels.txt` must match the data's class names. Inputs go through the
signature as a client sends them: tensors the signature takes as they are, and
for a signature that takes encoded image bytes the files' bytes (the data's
test references are the file paths), so decoding and resizing run in the graph.
"""
import json
import os
from dataclasses import dataclass
from typing import Any, List

import numpy as np

from tl_app.errors import UserError

SPLITS = ("test", "validation", "train")


@dataclass
class Export:
    """A loaded export version: its path, `serving_default`, the input it takes, its labels and config."""

    path: str
    signature: Any
    input_name: str
    input_spec: Any
    class_names: List[str]
    config: dict
    module: Any = None  # keeps the loaded SavedModel (and so the signature's variables) alive


def version_dir(path):
    """The export version `path` names: itself when it holds saved_model.pb, else its newest integer version."""
    from tl_app.export.savedmodel import versions

    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isdir(path) and versions(path):
        return os.path.join(path, str(versions(path)[-1]))
    what = "no such directory" if not os.path.isdir(path) else "no saved_model.pb and no integer version directories"
    raise UserError(f"{path}: not an export ({what}); name a version directory such as saved_models/digits/3, or a "
                    "model directory such as saved_models/digits (its newest version).")


def load(path):
    """Load the export at `path` (a version or model directory); UserError when it is not a tl-app export."""
    from tl_app.export.saved_export import load_saved_model
    from tl_app.export.savedmodel import ASSETS_EXTRA

    version = version_dir(path)
    extra = os.path.join(version, ASSETS_EXTRA)
    for name in ("config.json", "labels.txt"):
        if not os.path.isfile(os.path.join(extra, name)):
            raise UserError(f"{version}: no {ASSETS_EXTRA}/{name}; `tl-app evaluate` needs an export made by tl-app "
                            "(its config names the data, its labels the classes).")
    with open(os.path.join(extra, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    with open(os.path.join(extra, "labels.txt"), encoding="utf-8") as f:
        class_names = [line.rstrip("\n") for line in f if line.rstrip("\n")]
    module = load_saved_model(version)  # TF-Text's ops first: a text export tokenizes in its graph
    if "serving_default" not in module.signatures:
        raise UserError(f"{version}: the SavedModel has no serving_default signature.")
    signature = module.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise UserError(f"{version}: serving_default takes {len(inputs)} inputs ({', '.join(inputs)}); "
                        "`tl-app evaluate` feeds one.")
    (input_name, input_spec), = inputs.items()
    return Export(version, signature, input_name, input_spec, class_names, config, module)


def recipe_of(export, data_dir=None):
    """The recipe (class and config) the export was trained with, `data_dir` replacing its data location."""
    from tl_app import api, config_file

    config = {k: v for k, v in export.config.items() if k != "distribution"}
    if not (config.get(config_file.RECIPE_KEY) or config.get(config_file.RECIPE_FILE_KEY)):
        raise UserError(f"{export.path}: its config.json names no recipe; it was not made by `tl-app run`.")
    loaded = config_file.ConfigFile(path=os.path.join(export.path, "assets.extra", "config.json"),
                                    values={k: v for k, v in config.items() if k not in config_file.RECORD_KEYS},
                                    recipe=config.get(config_file.RECIPE_KEY),
                                    recipe_file=config.get(config_file.RECIPE_FILE_KEY))
    cls = api.recipe_class(None, loaded)
    return cls(api.resolve_config(cls, loaded, values={"data_dir": data_dir}))


def check_classes(export, data):
    """UserError naming the differences when the data's classes are not the export's labels (same order)."""
    if list(data.class_names) == export.class_names:
        return
    missing = [c for c in export.class_names if c not in data.class_names]
    extra = [c for c in data.class_names if c not in export.class_names]
    parts = []
    if missing:
        parts.append(f"the data lacks {', '.join(missing)}")
    if extra:
        parts.append(f"the data has {', '.join(extra)} that the export does not know")
    if not parts:
        parts.append(f"the order differs (export: {', '.join(export.class_names)}; data: {', '.join(data.class_names)})")
    raise UserError(f"the data's classes do not match {export.path}'s labels: {'; '.join(parts)}. Evaluate on data with "
                    "the classes the model was trained on (--data-dir).")


def split_of(data, split):
    """(unbatched dataset, references or None, split name as reported) of `split` (test, validation, train)."""
    if split == "test":
        return data.test, data.test_references, data.test_split_name
    return getattr(data, split), None, split


def signature_inputs(export, dataset, references):
    """Unbatched `(input the signature takes, label)` pairs from the data's `(inputs, label)` pairs."""
    import tensorflow as tf

    spec, given = export.input_spec, dataset.element_spec[0]
    if getattr(given, "dtype", None) == spec.dtype:
        return dataset
    if spec.dtype == tf.string and references:
        if not all(os.path.isfile(r) for r in references[:5]):
            raise UserError(f"{export.path}: serving_default takes encoded bytes, and the data's examples are not files.")
        labels = dataset.map(lambda x, y: y)
        files = tf.data.Dataset.from_tensor_slices(tf.constant(references, tf.string)).map(tf.io.read_file)
        return tf.data.Dataset.zip((files, labels))
    if getattr(given, "dtype", None) is not None and given.dtype.is_floating and spec.dtype.is_floating:
        return dataset.map(lambda x, y: (tf.cast(x, spec.dtype), y))
    raise UserError(f"{export.path}: serving_default takes {spec.dtype.name} '{export.input_name}', the data gives "
                    f"{getattr(given, 'dtype', given)}; evaluate it with data of the kind it was trained on.")


def predict_export(export, dataset, batch_size, references=None, split="test"):
    """`Predictions` of the export's `serving_default` on an unbatched `(inputs, label)` dataset."""
    from tl_app.evaluate.predictions import Predictions, predict_batches

    fed = signature_inputs(export, dataset, references)
    call = lambda x: export.signature(**{export.input_name: x})["probabilities"].numpy()  # noqa: E731
    labels, probabilities = predict_batches(call, fed.batch(batch_size), desc=f"evaluating {split}")
    return Predictions(labels, probabilities.astype(np.float32), list(export.class_names), list(references or []), split)


def output_dir(path, logdir, recipe_name):
    """The directory `tl-app evaluate` writes to: `path` (new or empty), else `<logdir>/<recipe>/eval-<timestamp>/`."""
    from tl_app.run_paths import create_run_dir, new_run_id

    if path is None:
        return create_run_dir(logdir, recipe_name, "eval-" + new_run_id())
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UserError(f"--output-dir {path}: exists and is not an empty directory; name a new one (nothing is "
                        "overwritten).")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output-dir {path}: cannot create it ({exc.strerror}); name a writable directory.") from None
    return path


def explain_mistakes(export, recipe, data, dataset, predictions):
    """The `inspect.explanations.Explanation` of the most confident mistakes in `predictions` (Grad-CAM for
    images, attention rollout on a ViT base, token attributions for texts), drawn with the recipe's model
    carrying the export's Keras weights (`assets.extra/model.weights.h5`); None, said in the log, where there
    is none to draw."""
    from tl_app import log
    from tl_app.export.savedmodel import keras_weights_path
    from tl_app.inspect.explanations import SHOWN, explain, mistakes

    weights = keras_weights_path(export.path)
    picks = mistakes(predictions, "test", SHOWN * 2)
    if data.label_mode == "multi_label" or not picks:
        return None
    if not os.path.isfile(weights):
        log.info(f"explanations: {export.path} has no {os.path.relpath(weights, export.path)} (exported before tl_app "
                 "wrote Keras weights), so none are drawn")
        return None
    try:
        model = recipe.build_model(data)
        model.load_weights(weights)
        return explain(model, {"test": dataset}, picks, export.class_names)
    except UserError as exc:  # e.g. the base's weights cannot be had here, or a base with no feature map
        log.info(f"explanations: none drawn ({exc})")
        return None


def evaluate_export(model_dir, data_dir=None, split="test", out=None, logdir="runs"):
    """Evaluate the export at `model_dir`: metrics.json, predictions.csv, figures and report.md in the output
    directory; returns (Evaluation, output directory).

    Args:
        model_dir: a version directory, or a model directory (its newest version).
        data_dir: data to evaluate on instead of the export's config's `data_dir`.
        split: `test`, `validation` or `train` of the data as the recipe splits it.
        out: the output directory (default `<logdir>/<recipe>/eval-<timestamp>/`).
        logdir: base of the default output directory.

    Examples:
        >>> evaluation, out = evaluate_export("saved_models/digits")  # doctest: +SKIP
        >>> evaluation.metrics["accuracy"]  # doctest: +SKIP
        0.9638
    """
    from tl_app import config as config_lib
    from tl_app import log
    from tl_app.evaluate import report
    from tl_app.evaluate.evaluation import evaluate, image_examples

    if split not in SPLITS:
        raise UserError(f"--split {split}: choose one of {', '.join(SPLITS)}.")
    export = load(model_dir)
    recipe = recipe_of(export, data_dir)
    data = recipe.load_evaluation_data()
    check_classes(export, data)
    dataset, references, split_name = split_of(data, split)
    directory = output_dir(out, logdir, recipe.name)
    log.info(f"evaluating {export.path} (recipe {recipe.name}) on the {split_name} split; writing to {directory}")
    predictions = predict_export(export, dataset, recipe.config.batch_size, references, split_name)
    loss = float(recipe.loss()(predictions.labels, predictions.probabilities))
    thresholds = os.path.join(export.path, "assets.extra", "thresholds.json")
    if data.label_mode == "multi_label" and os.path.isfile(thresholds):  # judged at the export's own thresholds
        from tl_app.evaluate.multi_label import evaluate_label_sets

        with open(thresholds, encoding="utf-8") as f:
            evaluation = evaluate_label_sets(predictions, np.float32(json.load(f)["thresholds"]), loss=loss)
    else:
        evaluation = evaluate(predictions, loss=loss)
    evaluation.render(image_examples(dataset, evaluation))
    files = evaluation.write(directory)
    defaults = config_lib.to_dict(recipe.default_config())
    facts = [f"export `{export.path}` (recipe `{recipe.name}`), evaluated through its serving_default signature",
             f"data: {recipe.config.data_dir or 'as the recipe loads it'}; {len(data.class_names)} classes; "
             f"{len(predictions.labels)} {split_name} examples",
             "loss: the recipe's loss on the probabilities (without the run's regularization terms)"]
    markdown = report.report_markdown(evaluation, f"{recipe.name}: evaluation of {export.path}", facts,
                                      report.config_differences(config_lib.to_dict(recipe.config), defaults), files)
    explanation = explain_mistakes(export, recipe, data, dataset, predictions)
    if explanation is not None:
        with open(os.path.join(directory, explanation.figure), "wb") as f:
            f.write(explanation.png)
        markdown += "\n" + "\n".join(explanation.markdown()) + "\n"
    report.write_report(directory, markdown)
    return evaluation, directory
