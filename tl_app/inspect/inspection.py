"""All the inspection of a run's splits from their features: label issues, duplicates, leaks, outliers.

Features come from the run's feature store (`engine.features.split_features`): the head phase's extractor,
so a run that inspects and then trains extracts once. Everything else here is numpy and scikit-learn on
those arrays, seconds for thousands of examples.
"""
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from tl_app.inspect import confident_learning, duplicates, findings as findings_lib, outliers, out_of_fold
from tl_app.inspect.findings import Finding

LABELLED = ("train", "validation")  # label errors are looked for where the model learns and selects


@dataclass
class InspectOptions:
    """How to inspect (the config fields `inspect_*`).

    Args:
        folds: k of the out-of-fold probe.
        seed: its folds' shuffle.
        cut: which confident-learning examples are flagged (`confident_learning.CUTS`).
        similarity: cosine similarity of features at or above which two examples are near-duplicates.
        neighbours: k of the outlier score.
        fence: outliers lie above Q3 + fence * IQR of the training scores.
    """

    folds: int = 5
    seed: int = 42
    cut: str = "below_chance"
    similarity: float = 0.995
    neighbours: int = 5
    fence: float = 3.0


@dataclass
class Inspection:
    """What an inspection found: `findings` (data_issues.csv's rows, by kind, most certain first) and `counts`."""

    findings: List[Finding]
    counts: Dict[str, int]
    seconds: Dict[str, float] = field(default_factory=dict)

    def flagged(self, split, kinds):
        """Indices of `split` some finding of one of `kinds` names. A `leak` names the training twin (the test
        example stays, its metrics are also reported without it)."""
        marked = set()
        for f in self.findings:
            if f.issue not in kinds:
                continue
            if f.issue == "leak":
                if f.other_split == split:
                    marked.add(f.other_index)
            elif f.split == split:
                marked.add(f.index)
        return sorted(marked)

    def leaked_test(self):
        """Indices of test examples with a training twin."""
        return sorted({f.index for f in self.findings if f.issue == "leak"})


def _reference(references, split, index):
    names = references.get(split)
    return str(names[index]) if names is not None and index < len(names) else f"{split}[{index}]"


def label_findings(features, references, class_names, options):
    """Label issues of the train and validation splits together (one out-of-fold probe over both)."""
    splits = [s for s in LABELLED if s in features]
    x = np.concatenate([features[s][0] for s in splits])
    y = np.concatenate([features[s][1] for s in splits]).astype(np.int64)
    origin = [(s, i) for s in splits for i in range(len(features[s][1]))]
    out_of_fold.check_folds(y, class_names, options.folds, "+".join(splits))
    probabilities = out_of_fold.out_of_fold_probabilities(x, y, len(class_names), options.folds, options.seed)
    indices, quality, suggested = confident_learning.find_label_issues(y, probabilities, options.cut)
    rows = []
    for position, q, s in zip(indices, quality, suggested):
        split, index = origin[position]
        rows.append(Finding(split, index, _reference(references, split, index), "label", class_names[y[position]],
                            class_names[s], 1.0 - float(q)))
    return rows


def pair_findings(features, hashes, references, class_names, options):
    """Duplicates and leaks, exact then near, each kind most similar first."""
    exact = duplicates.exact_pairs(hashes)
    near = duplicates.near_pairs({s: x for s, (x, _) in features.items()}, options.similarity, exact)
    rows = []
    for pair in sorted(exact + near, key=lambda p: (-p.similarity, p.split, p.index)):
        given = class_names[int(features[pair.split][1][pair.index])]
        twin_label = class_names[int(features[pair.other_split][1][pair.other_index])]
        rows.append(Finding(pair.split, pair.index, _reference(references, pair.split, pair.index), pair.issue, given,
                            twin_label if twin_label != given else "", pair.similarity,
                            _reference(references, pair.other_split, pair.other_index), pair.other_split,
                            pair.other_index))
    return rows


def outlier_findings(features, references, class_names, options):
    found = outliers.find_outliers({s: x for s, (x, _) in features.items()}, options.neighbours, options.fence)
    rows = [Finding(split, int(i), _reference(references, split, int(i)), "outlier",
                    class_names[int(features[split][1][i])], score=float(score))
            for split, (indices, scores) in found.items() for i, score in zip(indices, scores)]
    return sorted(rows, key=lambda f: -f.score)


def inspect_features(features, hashes, references, class_names, options=None):
    """Inspect splits from their features: an `Inspection`.

    Args:
        features: `{split: (features, labels)}` with "train" (and usually "validation", "test").
        hashes: `{split: [content hash per example]}` (`duplicates.content_hashes`).
        references: `{split: [file path or excerpt per example]}`; a missing split is named `split[index]`.
        class_names: index = label.
        options: `InspectOptions`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(0, 1, (30, 6)) + 4 * np.eye(6)[0], rng.normal(0, 1, (30, 6)) + 4 * np.eye(6)[1]])
        >>> y = np.repeat([0, 1], 30); y[3] = 1  # a class-0 example given label 1
        >>> hashes = {"train": [str(i) for i in range(60)], "test": ["5"]}  # test's one example is train[5]
        >>> found = inspect_features({"train": (x, y), "test": (x[5:6], y[5:6])}, hashes, {}, ["a", "b"])
        >>> [(f.issue, f.split, f.index) for f in found.findings if f.issue in ("label", "leak")]
        [('label', 'train', 3), ('leak', 'test', 0)]
    """
    import time

    from threadpoolctl import threadpool_limits

    options = options or InspectOptions()
    seconds, rows = {}, []
    for kind, find in (("label", lambda: label_findings(features, references, class_names, options)),
                       ("pairs", lambda: pair_findings(features, hashes, references, class_names, options)),
                       ("outlier", lambda: outlier_findings(features, references, class_names, options))):
        start = time.perf_counter()
        with threadpool_limits(limits=1, user_api="blas"):  # small solves: see out_of_fold
            rows += find()
        seconds[kind] = time.perf_counter() - start
    order = {kind: n for n, kind in enumerate(findings_lib.ISSUES)}
    rows.sort(key=lambda f: order[f.issue])  # stable: each kind keeps its most-certain-first order
    return Inspection(rows, findings_lib.counts(rows), seconds)
