"""One set of predictions on a split, and everything derived from it.

`predict` runs a model once over a split (a progress bar when it takes more than
a couple of seconds on a terminal); `Predictions` holds the labels, the
probabilities and a reference per example (file path, text excerpt, or index),
and is what the metrics, predictions.csv, the figures, TensorBoard and the
report are all made from, so they always agree.
"""
import csv
from dataclasses import dataclass, field
from typing import List

import numpy as np

from tl_app.log import progress


def _known_length(batches):
    n = int(batches.cardinality())
    return n if n >= 0 else None


def predict_batches(call, batches, desc="predicting"):
    """(labels [N] (multi-hot [N, L] stay 2-D), probabilities [N, C]) from `call(x)` over batched `(x, y)` data."""
    labels, probabilities = [], []
    for x, y in progress(batches, total=_known_length(batches), desc=desc):
        probabilities.append(np.asarray(call(x), np.float32))
        y = np.asarray(y)
        labels.append(y if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1))
    if not labels:
        return np.zeros([0], np.int64), np.zeros([0, 0], np.float32)
    return np.concatenate(labels).astype(np.int64), np.concatenate(probabilities)


@dataclass
class Predictions:
    """Labels and predicted probabilities of one split, with what each example is.

    Args:
        labels: true class indices [N].
        probabilities: float [N, C].
        class_names: index = label.
        references: per example, a file path or a text excerpt; empty means the index.
        split: the split's name (`test`, `validation`, ...).

    Examples:
        >>> import numpy as np
        >>> p = Predictions(np.array([0, 1]), np.array([[0.3, 0.7], [0.1, 0.9]]), ["cat", "dog"])
        >>> p.predicted.tolist(), p.mistakes().tolist(), p.reference(1)
        ([1, 1], [0], '1')
    """

    labels: np.ndarray
    probabilities: np.ndarray
    class_names: List[str]
    references: List[str] = field(default_factory=list)
    split: str = "test"

    @property
    def predicted(self):
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self):
        return self.probabilities.max(axis=1)

    def reference(self, i):
        return self.references[i] if self.references else str(i)

    def mistakes(self, limit=None):
        """Indices of wrong predictions, most confident first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        order = wrong[np.argsort(-self.confidence[wrong], kind="stable")]
        return order if limit is None else order[:limit]

    def write_csv(self, path):
        """predictions.csv: index, input, true, predicted, confidence, correct (one row per example)."""
        names, predicted, confidence = self.class_names, self.predicted, self.confidence
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "input", "true", "predicted", "confidence", "correct"])
            for i, (label, guess) in enumerate(zip(self.labels, predicted)):
                writer.writerow([i, self.reference(i), names[label], names[guess], f"{confidence[i]:.6f}",
                                 int(label == guess)])


def predict(model, dataset, batch_size, class_names, references=None, split="test"):
    """`Predictions` of `model` (raw inputs -> probabilities) on an unbatched `(inputs, label)` dataset.

    The model runs in inference mode in one traced function (returned too: its graph is the
    model graph TensorBoard shows). No collective op: under a multi-worker strategy every worker
    may call this alone.

    Args:
        model: the Keras model.
        dataset: unbatched `(inputs, label)` pairs.
        batch_size: examples per call.
        class_names: index = label.
        references: per example, what to call it (file path, text excerpt), or None for the index.
        split: the split's name.
    """
    from tl_app.engine.datasets import batched
    from tl_app.engine.features import inference_function

    call = inference_function(model, dataset.element_spec[0])
    labels, probabilities = predict_batches(call, batched(dataset, batch_size), desc=f"evaluating on {split}")
    if references is not None and len(references) != len(labels):
        raise ValueError(f"{len(references)} references for {len(labels)} {split} examples")
    return Predictions(labels, probabilities, list(class_names), list(references or []), split), call


def inputs_at(datasets, places):
    """The raw inputs at `places` (`[(split, index)]`) of `datasets` (`{split: unbatched (inputs, label)
    dataset}`), in that order: one `example_inputs` pass per split."""
    wanted = {}
    for split, index in places:
        wanted.setdefault(split, set()).add(int(index))
    found = {split: example_inputs(datasets[split], sorted(indices)) for split, indices in wanted.items()}
    return [found[split][int(index)] for split, index in places]


def example_inputs(dataset, indices, batch_size=256):
    """The raw inputs of examples `indices` of an unbatched `(inputs, label)` dataset, as numpy arrays.

    One pass in batches, stopping after the last index wanted.
    """
    wanted = sorted(set(int(i) for i in indices))
    found = {}
    for start, (x, _) in zip(range(0, wanted[-1] + 1 if wanted else 0, batch_size), dataset.batch(batch_size)):
        x = np.asarray(x)
        found.update({i: x[i - start] for i in wanted if start <= i < start + len(x)})
    return found
