"""A linear probe with k-fold cross-validation on frozen features: how well a base's features separate the classes.

A multinomial logistic regression (scikit-learn) on standardized features, fitted
k times on train+validation with one fold held out each time (stratified,
seeded). Its held-out accuracy and macro F1 are what the head phase can reach
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


def probe(features, labels, folds=FOLDS, seed=42, max_iter=200):
    """`ProbeScore` of a logistic-regression probe on `features` with `folds`-fold stratified cross-validation.

    Args:
        features: [N, D] features of train+validation (never the test split).
        labels: [N] class indices.
        folds: number of folds.
        seed: shuffles the folds.
        max_iter: L-BFGS iterations per fit (a probe ranks bases; it need not converge to the last digit).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> labels = np.repeat([0, 1], 50)
        >>> score = probe(np.eye(2)[labels] + rng.normal(scale=0.3, size=(100, 2)), labels)
        >>> score.accuracy > 0.9
        True
    """
    import time
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, C=0.1))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_validate(model, np.asarray(features, dtype=np.float32), np.asarray(labels).reshape(-1),
                                cv=splitter, scoring=("accuracy", "f1_macro"))
    acc, f1 = scores["test_accuracy"], scores["test_f1_macro"]
    return ProbeScore(float(acc.mean()), float(acc.std()), float(f1.mean()), float(f1.std()), folds,
                      time.perf_counter() - start)
