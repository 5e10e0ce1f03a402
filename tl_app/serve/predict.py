"""`tl-app predict`: classify files or strings with an export, here or on a running server.

What INPUT means follows the export's `serving_default` input:
- a DT_STRING input named `*_bytes` (TF Serving's binary convention; image exports' `image_bytes`)
  takes files, sent as their bytes (JPEG, PNG, ...);
- another DT_STRING input (text exports' `text`) takes strings, or a text file of one text a line;
- a numeric input (the MLP recipes' `pixels`) takes CSV files of numbers: one example a row, its
  values in the input's shape order (8x8 = 64 values for `digits`); a header row is skipped.

The model runs in this process (`Servable`, no server), or with `url` on a running `tl-app serve`
or TF Serving (its metadata says the input; its answer is read as a predict response).

Examples:
    >>> rows = predict_model("saved_models/digits", ["digits.csv"], top_k=3)  # doctest: +SKIP
    >>> rows[0]["top_k"][0]["class"]  # doctest: +SKIP
    '3'
"""
import csv
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from tl_app.errors import UserError
from tl_app.export import models_config, savedmodel

MAX_SHOWN = 60


@dataclass
class ModelRef:
    """Which export `MODEL_DIR` names: model name, version (None: the server's latest), local directory."""

    name: str
    version: Optional[int]
    path: Optional[str]


def resolve_model(model, local_required=True):
    """A model directory (`saved_models/<m>`: its newest version), a version directory, or (with a URL) a name."""
    if os.path.isfile(os.path.join(model, "saved_model.pb")):
        path = os.path.normpath(model)
        base = os.path.basename(path)
        numbered = savedmodel.VERSION_NAME.fullmatch(base)  # "²".isdigit() is true, int("²") raises
        name = os.path.basename(os.path.dirname(path)) if numbered else base
        return ModelRef(name, int(base) if numbered else None, path)
    versions = models_config.version_numbers(model)
    if versions:
        path = os.path.normpath(model)
        return ModelRef(os.path.basename(path), versions[-1], os.path.join(path, str(versions[-1])))
    if os.path.isdir(model):
        raise UserError(f"{model}: no SavedModel in it (expected saved_models/<model> or saved_models/<model>/<N>).")
    if local_required:
        raise UserError(f"{model}: no such export (expected saved_models/<model> or saved_models/<model>/<N>).")
    models_config.check_model_name(model)
    return ModelRef(model, None, None)


def _labels(ref):
    path = os.path.join(ref.path, "assets.extra", "labels.txt") if ref.path else None
    if path and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    return None


def _short(text):
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _read_file(path, what):
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file ({what}).")
    with open(path, "rb") as f:
        return f.read()


def _csv_rows(path, size, dtype):
    rows = []
    text = _read_file(path, f"a CSV file of {size} numbers a row").decode("utf-8", "replace")
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if number == 1:
                continue  # a header row
            raise UserError(f"{path}:{number}: not all numbers ({_short(','.join(cells))}).") from None
        if len(values) != size:
            raise UserError(f"{path}:{number}: {len(values)} values; this model takes {size} per example.")
        rows.append((f"{path}:{number}", values))
    if not rows:
        raise UserError(f"{path}: no rows of numbers.")
    return rows


def read_inputs(paths_or_texts, name, dtype, shape):
    """(shown names, batch array) for the INPUT arguments, as the signature input `name` takes them."""
    if not paths_or_texts:
        raise UserError("give at least one INPUT (files, strings, or a CSV file of numbers).")
    if dtype == "DT_STRING" and name.endswith("_bytes"):
        shown = list(paths_or_texts)
        values = [_read_file(p, "a file to send as bytes, e.g. an image") for p in paths_or_texts]
    elif dtype == "DT_STRING":
        shown, values = [], []
        for item in paths_or_texts:
            if os.path.isfile(item):
                lines = _read_file(item, "a text file").decode("utf-8", "replace").splitlines()
                picked = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
                if not picked:
                    raise UserError(f"{item}: no texts in it (one text a line).")
                shown += [f"{item}:{i}" for i, _ in picked]
                values += [line.encode("utf-8") for _, line in picked]
            else:
                shown.append(_short(item))
                values.append(item.encode("utf-8"))
    else:
        from tl_app.serve.json_tensor import DTYPES

        if dtype not in DTYPES or shape is None or any(d < 0 for d in shape[1:]):
            raise UserError(f"input '{name}' ({dtype}, shape {shape}): tl-app predict reads CSV numbers for inputs "
                            "of a fixed shape only.")
        size = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        rows = [row for path in paths_or_texts for row in _csv_rows(path, size, dtype)]
        shown = [where for where, _ in rows]
        batch = np.array([values for _, values in rows], dtype=DTYPES[dtype][0])
        return shown, batch.reshape([len(rows), *shape[1:]])
    batch = np.empty(len(values), dtype=object)
    batch[:] = values
    return shown, batch


def _rows(shown, outputs, labels, top_k):
    probabilities = outputs.get("probabilities")
    if probabilities is None:
        raise UserError(f"the export's serving_default has no 'probabilities' output (outputs: "
                        f"{', '.join(sorted(outputs))}); tl-app predict reads classification exports.")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    names = outputs.get("class_name")
    predicted = np.asarray(outputs["predicted"]).astype(bool) if "predicted" in outputs else None
    rows = []
    for i, where in enumerate(shown):
        order = np.argsort(-probabilities[i], kind="stable")[:top_k]
        top = []
        for class_id in order:
            if labels is not None and class_id < len(labels):
                label = labels[class_id]
            elif names is not None and class_id == order[0]:
                label = _text(np.asarray(names)[i])
            else:
                label = f"class {class_id}"
            top.append({"class": label, "class_id": int(class_id),
                        "probability": float(str(np.float32(probabilities[i, class_id])))})  # float32 digits
        row = {"input": where, "top_k": top}
        if predicted is not None:  # a multi-label export: every label its threshold switched on
            row["labels"] = [labels[j] if labels is not None and j < len(labels) else f"class {j}"
                             for j in np.flatnonzero(predicted[i])]
        rows.append(row)
    return rows


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def predict_model(model, inputs: List[str], top_k=3, url=None):
    """Top-k classes for each INPUT: [{"input": shown name, "top_k": [{"class", "class_id", "probability"}]}].

    Args:
        model: an export directory (`saved_models/<m>` or `saved_models/<m>/<N>`), or with `url` a model name.
        inputs: files, strings or CSV files (see the module docstring).
        top_k: classes per input.
        url: `http://HOST:PORT` of a running TF Serving / `tl-app serve`; None runs the model here.
    """
    if top_k < 1:
        raise UserError(f"--top-k {top_k}: must be at least 1.")
    ref = resolve_model(model, local_required=url is None)
    if url is None:
        outputs, shown = _predict_here(ref, inputs)
    else:
        outputs, shown = _predict_remote(ref, inputs, url)
    return _rows(shown, outputs, _labels(ref), top_k)


def _predict_here(ref, inputs):
    from tl_app.serve.errors import ServingError
    from tl_app.serve.server import import_tensorflow
    from tl_app.serve.servable import Servable

    import_tensorflow()
    servable = Servable.load(ref.name, ref.version or 0, ref.path)
    signature = servable.signature("")
    name, info = _single_input(signature.inputs)
    shown, batch = read_inputs(inputs, name, info.dtype, info.shape)
    try:
        return servable.predict("", {name: batch}), shown
    except ServingError as exc:
        raise UserError(f"{ref.path}: the model refused the input: {exc.message}") from None


def _single_input(inputs):
    """(name, info) of a signature's one input; UserError for several."""
    if len(inputs) != 1:
        raise UserError(f"serving_default takes {len(inputs)} inputs ({', '.join(sorted(inputs))}); tl-app predict "
                        "sends one.")
    return next(iter(inputs.items()))


def _predict_remote(ref, inputs, url):
    from tl_app.serve.client import RestClient, RestError

    client = RestClient(url)
    try:
        metadata = client.metadata(ref.name, ref.version)
        signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
        name, info = _single_input(signature["inputs"])
        shape = None if info["tensor_shape"].get("unknown_rank") else \
            [int(d["size"]) for d in info["tensor_shape"].get("dim", [])]
        shown, batch = read_inputs(inputs, name, info["dtype"], shape)
        outputs = client.predict(ref.name, {name: batch}, ref.version)
    except RestError as exc:
        raise UserError(f"{url}: HTTP {exc.status}: {exc.message}") from None
    except OSError as exc:
        raise UserError(f"{url}: cannot reach the server ({exc.strerror or exc}); is `tl-app serve` or TF Serving "
                        "running there?") from None
    finally:
        client.close()
    if not isinstance(outputs, dict):
        raise UserError(f"{url}: the answer has one unnamed output; tl-app predict reads classification exports.")
    return {k: np.asarray(v, dtype=object if k == "class_name" else None) for k, v in outputs.items()}, shown


def format_rows(rows):
    """One line per input: `INPUT  class p, class p, ...` (multi-label: `INPUT  {label, label}  class p, ...`)."""
    width = min(max(len(r["input"]) for r in rows), MAX_SHOWN)
    # A multi-label export's rows lead with the label set its thresholds chose.
    return "\n".join(f"{r['input'].ljust(width)}  "
                     + (f"{{{', '.join(r['labels'])}}}  " if "labels" in r else "")
                     + ", ".join(f"{t['class']} {t['probability']:.4f}" for t in r["top_k"]) for r in rows)
