"""Out-of-fold class probabilities: a k-fold logistic-regression probe on frozen-base features.

Confident learning needs out-of-sample probabilities: a model's predictions on the examples it trained on are
overconfident in their given labels, mislabeled ones included. Each example here is predicted by a probe that
did not see it (scikit-learn's `cross_val_predict` over `StratifiedKFold`).
"""
import numpy as np

from tl_app.errors import UserError


def check_folds(labels, class_names, folds, split="train"):
    """UserError naming the smallest class when one has fewer examples than `folds` (stratified folds need one each).

    Examples:
        >>> check_folds(np.array([0, 0, 1]), ["cat", "dog"], 2)
        Traceback (most recent call last):
        ...
        tl_app.errors.UserError: inspection: class 'dog' has 1 example(s) in the train split, fewer than the 2 folds of the label-error probe; add examples, or a smaller --set inspect_folds (at least 2), or --set inspect_data=false.
    """
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(class_names))
    present = [(int(c), name) for c, name in zip(counts, class_names) if c > 0]
    count, name = min(present)
    if count < folds:
        raise UserError(f"inspection: class '{name}' has {count} example(s) in the {split} split, fewer than the "
                        f"{folds} folds of the label-error probe; add examples, or a smaller --set inspect_folds (at "
                        "least 2), or --set inspect_data=false.")


def out_of_fold_probabilities(features, labels, num_classes, folds=5, seed=42, max_iter=300, regularization=3.0):
    """(n, num_classes) probabilities, each row from a logistic probe trained on the other folds.

    Args:
        features: (n, d) float array (frozen-base features).
        labels: (n,) int labels as given.
        num_classes: columns of the result (a class absent from `labels` gets probability 0).
        folds: k of the stratified k-fold split (each class needs at least k examples: `check_folds`).
        seed: shuffles the folds.
        max_iter: the probe's solver iterations.
        regularization: the logistic regression's C on unit-length features. 3 measured best on Fashion-MNIST
            (MobileNetV2 features, docs/inspect.md): a weaker penalty (or standardised features) makes
            overconfident out-of-fold probabilities, which flag more examples of confusable classes.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(0, 1, (20, 4)), rng.normal(4, 1, (20, 4))])
        >>> y = np.repeat([0, 1], 20)
        >>> p = out_of_fold_probabilities(x, y, 2, folds=4)
        >>> p.shape, bool((p.argmax(1) == y).mean() > 0.9)
        ((40, 2), True)
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer
    from threadpoolctl import threadpool_limits

    labels = np.asarray(labels, np.int64)
    present = np.unique(labels)
    probe = make_pipeline(Normalizer(), LogisticRegression(C=regularization, max_iter=max_iter))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # cross_val_predict's columns follow the classes present (sorted), as each fold sees them all (stratified).
    # One BLAS thread: these solves are small, and on a shared 2-core host BLAS threads spinning against other
    # processes made the 5 folds take 146 s instead of 4.7 s (3,050 x 1,280 features, measured).
    with threadpool_limits(limits=1, user_api="blas"):
        given = cross_val_predict(probe, np.asarray(features, np.float32), labels, cv=splitter, method="predict_proba")
    probabilities = np.zeros((len(labels), num_classes), np.float64)
    probabilities[:, present] = given
    return probabilities
