"""A linear probe with k-fold cross-validation on frozen features: how well a base's features separate the classes.

A multinomial logistic regression (scikit-learn) on unit-length features, fitted
k times on train+validation with one fold held out each time (stratified,
seeded; data inspection's probe, `tl_app.inspect.out_of_fold`). Its held-out accuracy and macro F1 are what the head phase can reach
on these features; their spread over the folds says how far two bases must
differ to be told apart.
"""
from dataclasses import dataclass

import numpy as np

FOLDS = 5


@dataclass
class ProbeScore:
    """Held-out figures of a k-fold probe: mean and standard deviation over the folds."""

    accuracy: float
    accuracy_std: float
    f1_macro: float
    f1_macro_std: float
    folds: int
    seconds: float

    def to_dict(self):
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def check_folds(labels, class_names, folds=FOLDS):
    """UserError when a class has fewer examples than folds (each fold must hold every class once)."""
    from tl_app.errors import UserError

    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=len(class_names))
    small = [(class_names[i], int(c)) for i, c in enumerate(counts) if c < folds]
    if small:
        named = ", ".join(f"'{name}' has {count}" for name, count in small)
        raise UserError(f"a {folds}-fold probe needs at least {folds} examples of each class in train+validation: "
                        f"{named}; add examples of it or remove the class.")


def probe(features, labels, folds=FOLDS, seed=42):
    """`ProbeScore` of a logistic-regression probe on `features` with `folds`-fold stratified cross-validation.

    The same probe as data inspection's (`tl_app.inspect.out_of_fold`: unit-length features, one BLAS
    thread); each fold's accuracy and macro F1 come from the predictions of the probe that did not see it.

    Args:
        features: [N, D] features of train+validation (never the test split).
        labels: [N] class indices.
        folds: number of folds.
        seed: shuffles the folds.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> labels = np.repeat([0, 1], 50)
        >>> score = probe(np.eye(2)[labels] + rng.normal(scale=0.3, size=(100, 2)), labels)
        >>> score.accuracy > 0.9
        True
    """
    import time

    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    from tl_app.inspect.out_of_fold import out_of_fold_probabilities

    start = time.perf_counter()
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    predicted = out_of_fold_probabilities(features, labels, int(labels.max()) + 1, folds, seed).argmax(1)
    # The folds cross_val_predict used (same splitter, same seed): one figure per fold for the spread.
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    acc, f1 = [], []
    for _, held_out in splitter.split(np.zeros(len(labels)), labels):
        acc.append(accuracy_score(labels[held_out], predicted[held_out]))
        f1.append(f1_score(labels[held_out], predicted[held_out], average="macro"))
    return ProbeScore(float(np.mean(acc)), float(np.std(acc)), float(np.mean(f1)), float(np.std(f1)), folds,
                      time.perf_counter() - start)
