"""An evaluation: one set of predictions, its metrics, its figures, and the files they are written to.

    predictions -> Evaluation (metrics, confusion matrix) -> figures (PNG bytes)
        -> metrics.json, predictions.csv, confusion_matrix.png, reliability.png[, examples.png]

Both the run's `evaluate` stage and `tl-app evaluate` (an export) go through here,
so a run and a later evaluation of its export report the same things the same way.
"""
import os
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from tl_app import atomic
from tl_app.evaluate import metrics as metrics_lib
from tl_app.evaluate import plots, tables
from tl_app.evaluate.predictions import Predictions

EXAMPLES = 16  # inputs in the examples grid
MISTAKES = 10  # most confident mistakes in the report and TensorBoard
FILES = {"confusion_matrix": "confusion_matrix.png", "reliability": "reliability.png", "examples": "examples.png"}


@dataclass
class Evaluation:
    """Metrics and figures of one `Predictions`.

    Args:
        predictions: the split's labels, probabilities and references.
        metrics: flat name -> value (see `evaluate.metrics`), with `loss` when the caller gave one.
        confusion: [C, C] counts, rows true, columns predicted.
        figures: name (`confusion_matrix`, `reliability`, `examples`) -> PNG bytes, once rendered.
    """

    predictions: Predictions
    metrics: Dict[str, float]
    confusion: np.ndarray
    figures: Dict[str, bytes] = field(default_factory=dict)
    files = FILES  # figure name -> file name (a subclass draws other figures)

    @property
    def split(self):
        return self.predictions.split

    @property
    def class_names(self):
        return self.predictions.class_names

    def render(self, examples=None):
        """Draw the confusion matrix, the reliability diagram and, given `{index: raw input}`, the examples grid."""
        p = self.predictions
        self.figures["confusion_matrix"] = plots.confusion_matrix_png(self.confusion, p.class_names,
                                                                      f"{p.split} confusion matrix")
        bins = metrics_lib.reliability_bins(p.labels, p.probabilities)
        self.figures["reliability"] = plots.reliability_png(*bins, self.metrics["ece"], f"{p.split} reliability")
        if examples:
            order = sorted(examples, key=list(self.example_indices()).index)
            titles = [f"true {p.class_names[p.labels[i]]}\npredicted {p.class_names[p.predicted[i]]} "
                      f"({p.confidence[i]:.2f})" for i in order]
            self.figures["examples"] = plots.examples_png([examples[i] for i in order], titles,
                                                          [p.labels[i] == p.predicted[i] for i in order])
        return self

    def example_indices(self, limit=EXAMPLES):
        """Examples worth a look: the most confident mistakes (up to half), then right ones across the split."""
        p = self.predictions
        mistakes = list(p.mistakes(limit // 2))
        right = np.flatnonzero(p.predicted == p.labels)
        spread = right[np.linspace(0, len(right) - 1, min(len(right), limit - len(mistakes))).astype(int)] if len(
            right) else []
        return [int(i) for i in mistakes] + [int(i) for i in dict.fromkeys(spread)]

    # ---- text ---------------------------------------------------------------------
    def metrics_table(self):
        return tables.metrics_table(self.metrics, self.split)

    def per_class_table(self):
        return tables.per_class_table(self.metrics, self.class_names, self.split)

    def per_class_markdown(self):
        return tables.markdown_table(*tables.per_class(self.metrics, self.class_names))

    def mistakes_markdown(self, limit=MISTAKES):
        p = self.predictions
        rows = [[i, p.reference(i), p.class_names[p.labels[i]], p.class_names[p.predicted[i]], f"{p.confidence[i]:.3f}"]
                for i in p.mistakes(limit)]
        if not rows:
            return "No mistakes."
        return tables.markdown_table(["index", "input", "true", "predicted", "confidence"], rows)

    # ---- files --------------------------------------------------------------------
    def write(self, directory):
        """metrics.json, predictions.csv and the rendered figures into `directory`; returns the figure files."""
        self.write_data(directory)
        return self.write_figures(directory)

    def write_data(self, directory):
        """metrics.json (atomically: a kill leaves the old file or the new one) and predictions.csv."""
        atomic.write_json(os.path.join(directory, "metrics.json"), self.metrics)
        self.predictions.write_csv(os.path.join(directory, "predictions.csv"))

    def write_figures(self, directory):
        """The rendered figures as PNG files in `directory`; returns `{figure: file name}`."""
        written = {}
        for name, png in self.figures.items():
            with open(os.path.join(directory, self.files[name]), "wb") as f:
                f.write(png)
            written[name] = self.files[name]
        return written


def evaluate(predictions, loss=None):
    """The `Evaluation` (metrics and confusion matrix; figures not yet drawn) of `predictions`.

    Args:
        predictions: a `Predictions`.
        loss: the training loss on the split as the model computes it (None: not reported).
    """
    found = metrics_lib.classification_metrics(predictions.labels, predictions.probabilities, predictions.class_names)
    if loss is not None:
        found = {"accuracy": found.pop("accuracy"), "loss": float(loss), **found}
    confusion = metrics_lib.confusion_matrix(predictions.labels, predictions.predicted, len(predictions.class_names))
    return Evaluation(predictions, found, confusion)


def keras_loss(loss_fn, model, predictions):
    """The loss Keras' `evaluate` reports: the recipe's loss on the probabilities plus the model's regularization."""
    value = float(loss_fn(predictions.labels, predictions.probabilities))
    return value + sum(float(np.asarray(term)) for term in model.losses)


def image_examples(dataset, evaluation: Evaluation) -> Optional[dict]:
    """`{index: raw input}` of the examples to show when the inputs are pictures, else None."""
    from tl_app.evaluate.predictions import example_inputs

    spec = dataset.element_spec[0]
    if not hasattr(spec, "dtype") or not (spec.dtype.is_floating or spec.dtype.is_integer):
        return None  # strings (text), several inputs
    if not plots.is_image_like(np.zeros([d or 8 for d in spec.shape], np.float32)):
        return None
    return example_inputs(dataset, evaluation.example_indices())
