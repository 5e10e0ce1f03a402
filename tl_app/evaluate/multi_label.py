"""Evaluation of a multi-label model (`label_mode=multi_label`): label sets, per-label thresholds, scikit-learn metrics.

    validation predictions -> per-label thresholds (evaluate.thresholds)
    test predictions + thresholds -> LabelSetPredictions -> MultiLabelEvaluation
        -> metrics.json, predictions.csv (true and predicted label sets), pr_curves.png, report tables

`multi_label_metrics` gives the flat keys a gate may name: `map` (macro average precision over the
labels with a positive in the split), `f1_micro`, `f1_macro`, `precision_micro`, `recall_micro`,
`precision_macro`, `recall_macro`, `subset_accuracy` (every label right), `hamming_loss`, the same F1
figures at one threshold of 0.5 for comparison (`f1_micro_at_0.5`, `f1_macro_at_0.5`),
`label_cardinality` (true labels per example) and `predicted_cardinality`; per label
`precision/`, `recall/`, `f1/`, `support/`, `ap/`, `threshold/` and `frequency/` (share of examples).
The class `MultiLabelEvaluation` answers what the run's stages ask of an `evaluation.Evaluation`.
"""
import csv
import warnings
from dataclasses import dataclass

import numpy as np

from tl_app.data.label_sets import label_set_text
from tl_app.evaluate import tables
from tl_app.evaluate.evaluation import Evaluation
from tl_app.evaluate.predictions import Predictions

PER_LABEL = ("precision", "recall", "f1", "support", "ap", "threshold", "frequency")
OVERALL = ("map", "f1_micro", "f1_macro", "precision_micro", "recall_micro", "precision_macro", "recall_macro",
           "subset_accuracy", "hamming_loss", "f1_micro_at_0.5", "f1_macro_at_0.5", "label_cardinality",
           "predicted_cardinality")
SINGLE_LABEL_ONLY = ("accuracy", "balanced_accuracy", "log_loss", "ece", "top5_accuracy", "precision_weighted",
                     "recall_weighted", "f1_weighted")
FILES = {"pr_curves": "pr_curves.png"}
MISTAKES = 10


def metric_names(class_names, with_loss=True):
    """Every key `multi_label_metrics` (plus `loss`) reports for these labels, overall names first.

    Examples:
        >>> metric_names(["a", "b"])[:3], metric_names(["a", "b"])[-1]
        (['map', 'loss', 'f1_micro'], 'frequency/b')
    """
    names = ["map"] + (["loss"] if with_loss else []) + list(OVERALL[1:])
    return names + [f"{kind}/{name}" for kind in PER_LABEL for name in class_names]


def _f1s(labels, predicted):
    from sklearn import metrics as skm

    out = {}
    for average in ("micro", "macro"):
        p, r, f, _ = skm.precision_recall_fscore_support(labels, predicted, average=average, zero_division=0)
        out.update({f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)})
    return out


def multi_label_metrics(labels, probabilities, thresholds, class_names):
    """The flat metrics of sigmoid `probabilities` [N, L] against multi-hot `labels` [N, L] at `thresholds` [L].

    Examples:
        >>> y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
        >>> p = np.array([[0.9, 0.2], [0.7, 0.4], [0.2, 0.8], [0.3, 0.1]])
        >>> m = multi_label_metrics(y, p, [0.5, 0.35], ["news", "sport"])
        >>> m["f1_micro"], m["subset_accuracy"], m["f1_micro_at_0.5"] < 1.0, m["threshold/sport"]
        (1.0, 1.0, True, 0.35)
    """
    from sklearn import metrics as skm

    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, np.float64)
    thresholds = np.asarray(thresholds, np.float64)
    predicted = (probabilities >= thresholds).astype(np.int64)
    at_half = (probabilities >= 0.5).astype(np.int64)
    with warnings.catch_warnings():  # labels absent from a small split: their figures are 0 (or left out of map)
        warnings.simplefilter("ignore")
        out = _f1s(labels, predicted)
        half = _f1s(labels, at_half)
        per = skm.precision_recall_fscore_support(labels, predicted, average=None, zero_division=0)
    present = labels.sum(axis=0) > 0
    ap = np.array([skm.average_precision_score(labels[:, j], probabilities[:, j]) if present[j] else np.nan
                   for j in range(labels.shape[1])])
    out = {"map": float(np.nanmean(ap)) if present.any() else 0.0, **out,
           "subset_accuracy": float(skm.accuracy_score(labels, predicted)),
           "hamming_loss": float(skm.hamming_loss(labels, predicted)),
           "f1_micro_at_0.5": half["f1_micro"], "f1_macro_at_0.5": half["f1_macro"],
           "label_cardinality": float(labels.sum(axis=1).mean()) if len(labels) else 0.0,
           "predicted_cardinality": float(predicted.sum(axis=1).mean()) if len(labels) else 0.0}
    frequency = labels.mean(axis=0) if len(labels) else np.zeros(labels.shape[1])
    for kind, values in zip(PER_LABEL, (*per, np.nan_to_num(ap), thresholds, frequency)):
        out.update({f"{kind}/{name}": float(value) for name, value in zip(class_names, values)})
    return out


def cooccurrence(labels):
    """int [L, L]: examples holding both labels (the diagonal: each label's count)."""
    labels = np.asarray(labels).astype(np.int64)
    return labels.T @ labels


@dataclass
class LabelSetPredictions(Predictions):
    """`Predictions` whose labels are multi-hot [N, L] and whose predicted sets come from per-label thresholds.

    Args:
        thresholds: float [L]; a label is predicted when its probability is at least its threshold.

    Examples:
        >>> p = LabelSetPredictions(np.array([[1, 1], [0, 1]]), np.array([[0.9, 0.2], [0.1, 0.8]]), ["a", "b"],
        ...                         thresholds=np.array([0.5, 0.15]))
        >>> p.predicted.tolist(), p.mistakes().tolist()
        ([[True, True], [False, True]], [])
    """

    thresholds: np.ndarray = None

    @property
    def predicted(self):
        return self.probabilities >= np.asarray(self.thresholds)

    @property
    def confidence(self):
        """How far the most doubtful label is from its threshold (0 = on it): low means unsure."""
        return np.abs(self.probabilities - np.asarray(self.thresholds)).min(axis=1)

    def wrong_labels(self):
        return (self.predicted != self.labels.astype(bool)).sum(axis=1)

    def mistakes(self, limit=None):
        """Indices of examples with any wrong label: the most wrong labels first, then the most confident."""
        wrong = np.flatnonzero(self.wrong_labels() > 0)
        error = np.abs(self.probabilities - self.labels).max(axis=1)
        order = wrong[np.lexsort((-error[wrong], -self.wrong_labels()[wrong]))]
        return order if limit is None else order[:limit]

    def write_csv(self, path):
        """predictions.csv: index, input, true, predicted (label sets joined by ';'), exact, one p/<label> column each."""
        names, predicted = self.class_names, self.predicted
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "input", "true", "predicted", "exact"] + [f"p/{name}" for name in names])
            for i, (label, guess) in enumerate(zip(self.labels, predicted)):
                writer.writerow([i, self.reference(i), label_set_text(label, names), label_set_text(guess, names),
                                 int(np.array_equal(label.astype(bool), guess))]
                                + [f"{p:.6f}" for p in self.probabilities[i]])


@dataclass
class MultiLabelEvaluation(Evaluation):
    """Metrics and figures of one `LabelSetPredictions`; files and tables as `evaluation.Evaluation` writes them.

    Args:
        predictions: labels, probabilities, thresholds, references.
        metrics: flat name -> value (`multi_label_metrics`, with `loss` when the caller gave one).
        confusion: None (a multi-label split has no confusion matrix).
        figures: name -> PNG bytes, once rendered.
        cooccurrence: [L, L] counts of the split's true labels.
    """

    cooccurrence: np.ndarray = None
    files = FILES
    per_class_heading = "Per label"  # report.md's section

    @property
    def thresholds(self):
        return self.predictions.thresholds

    def render(self, examples=None):
        """Draw the per-label precision-recall curves (the examples grid is for single-label runs)."""
        from tl_app.evaluate.plots import pr_curves_png

        p = self.predictions
        self.figures["pr_curves"] = pr_curves_png(p.labels, p.probabilities, p.thresholds, p.class_names,
                                                  f"{p.split} precision-recall per label")
        return self

    def example_indices(self, limit=16):
        return [int(i) for i in self.predictions.mistakes(limit)]

    def _per_label(self):
        headers = ["label", *PER_LABEL]
        rows = [[name] + [f"{int(self.metrics[f'{k}/{name}'])}" if k == "support" else f"{self.metrics[f'{k}/{name}']:.4f}"
                          for k in PER_LABEL] for name in self.class_names]
        return headers, rows

    def per_class_table(self):
        return tables.text_table(*self._per_label(), title=f"{self.split} metrics per label")

    def per_class_markdown(self):
        names = self.class_names
        rows = [[name] + [int(v) for v in row] for name, row in zip(names, self.cooccurrence)]
        return (tables.markdown_table(*self._per_label()) + "\n\nLabel co-occurrence (examples holding both):\n\n"
                + tables.markdown_table(["label", *names], rows))

    def mistakes_markdown(self, limit=MISTAKES):
        p = self.predictions
        rows = [[i, p.reference(i), label_set_text(p.labels[i], p.class_names) or "(none)",
                 label_set_text(p.predicted[i], p.class_names) or "(none)", int(p.wrong_labels()[i])]
                for i in p.mistakes(limit)]
        if not rows:
            return "No mistakes."
        return tables.markdown_table(["index", "input", "true", "predicted", "wrong labels"], rows)


def evaluate_label_sets(predictions, thresholds, loss=None):
    """The `MultiLabelEvaluation` of `predictions` (multi-hot labels) at per-label `thresholds`.

    Args:
        predictions: a `Predictions` with labels [N, L] (or a `LabelSetPredictions`).
        thresholds: float [L] (`evaluate.thresholds.choose_thresholds` on validation).
        loss: the training loss on the split, or None.
    """
    p = predictions
    p = LabelSetPredictions(p.labels, p.probabilities, p.class_names, p.references, p.split,
                            thresholds=np.asarray(thresholds, np.float64))
    found = multi_label_metrics(p.labels, p.probabilities, p.thresholds, p.class_names)
    if loss is not None:
        found = {"map": found.pop("map"), "loss": float(loss), **found}
    return MultiLabelEvaluation(p, found, None, cooccurrence=cooccurrence(p.labels))


def single_label_names_error(names):
    """The single-label metric names among `names` (a gate naming one in a multi-label run is refused)."""
    return [n for n in names if n in SINGLE_LABEL_ONLY]
