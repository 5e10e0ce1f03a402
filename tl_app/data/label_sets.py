"""Label sets: examples that carry any number of labels (`--set label_mode=multi_label`).

The image and text families share this: the config fields of the label mode, reading a row's
labels (one column of names joined by `label_separator`, or several 0/1 columns), label names
from the data (sorted), multi-hot arrays, seeded splits that refuse a label the train split
never shows, and the per-label positive weights of the loss. No TensorFlow here.

Examples:
    >>> sets, bad = label_sets(["sport;business", "tech", ""], ";", allow_empty=True)
    >>> sets, bad
    ([('business', 'sport'), ('tech',), ()], [])
    >>> multi_hot(sets, ["business", "sport", "tech"]).tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
"""
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from tl_app.config import RecipeConfig
from tl_app.data.splits import seeded_split
from tl_app.errors import UserError

SINGLE, MULTI = "single_label", "multi_label"
OTHER_SEPARATORS = (",", "|", ";")  # what a label column may hold instead of the configured separator
MAX_POSITIVE_WEIGHT = 20.0  # class_weight=auto: a label seen once in 1,000 rows is not weighted 999 times


@dataclass
class LabelModeConfig(RecipeConfig):
    """The fields of the label mode, for the families whose data may give an example several labels.

    `tl-app run text_csv --set label_mode=multi_label --set label_separator='|'`.
    """

    label_mode: Literal["single_label", "multi_label"] = "single_label"
    label_separator: str = ";"  # multi_label: between the names in one label cell
    label_columns: Optional[str] = None  # multi_label: comma-separated 0/1 columns, one per label (instead of one column)
    allow_empty_labels: bool = False  # multi_label: keep rows with no label ("none of them"); else counted as bad rows
    positive_weight: float = 1.0  # multi_label: weight of each label's positive term in binary cross-entropy
    threshold_floor: float = 0.1  # multi_label: per-label thresholds tuned on validation never go below this


def is_multi_label(config):
    return getattr(config, "label_mode", SINGLE) == MULTI


def check_label_mode(config, recipe_name, reads_label_sets):
    """UserError (before any data is read) for label-mode fields this recipe or these values cannot use.

    Args:
        config: the recipe's config.
        recipe_name: for the message.
        reads_label_sets: whether the recipe's data can give an example several labels (a CSV can,
            class folders cannot).
    """
    if not is_multi_label(config):
        return
    if not reads_label_sets:
        raise UserError(f"--set label_mode=multi_label: {recipe_name} reads one label per example (a class folder"
                        " each); use text_csv or image_csv with a labels column (names joined by ';').")
    if not config.label_separator or config.label_separator.strip() != config.label_separator:
        raise UserError(f"--set label_separator={config.label_separator!r}: give the character(s) between label"
                        " names, e.g. ';' or '|'.")
    if config.positive_weight <= 0:
        raise UserError(f"--set positive_weight={config.positive_weight}: must be above 0 (1 = unweighted).")
    if not 0.0 <= config.threshold_floor < 1.0:
        raise UserError(f"--set threshold_floor={config.threshold_floor}: must be in [0, 1).")


def check_separator(values, separator, where):
    """UserError when no label cell holds `separator` but some hold another common separator (say which)."""
    if any(separator in value for value in values):
        return
    for other in OTHER_SEPARATORS:
        if other != separator and any(other in value for value in values):
            raise UserError(f"{where}: no label cell holds the separator {separator!r} but some hold {other!r}"
                            f" (e.g. {next(v for v in values if other in v)!r}); --set label_separator='{other}'.")


def label_sets(values, separator, allow_empty=False):
    """`(sets, bad)`: each cell's label names (stripped, sorted, no repeats) and the indices of empty cells.

    An empty cell is the empty set when `allow_empty`, else its index is in `bad`.
    """
    sets, bad = [], []
    for i, value in enumerate(values):
        names = tuple(sorted({name.strip() for name in value.split(separator) if name.strip()}))
        if not names and not allow_empty:
            bad.append(i)
        sets.append(names)
    return sets, bad


def column_label_sets(columns, values, allow_empty=False, where="the data"):
    """`(sets, bad)` from 0/1 columns: `values[name][i]` says whether row i has label `name`.

    Raises:
        UserError: a cell that is not 0/1 (true/false, yes/no are taken too).
    """
    truth = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False, "1.0": True, "0.0": False}
    sets, bad = [], []
    for i in range(len(values[columns[0]])):
        row = []
        for name in columns:
            cell = values[name][i].strip().lower()
            if cell not in truth:
                raise UserError(f"{where}: column '{name}' holds {values[name][i]!r} in data row {i + 1}; label"
                                " columns hold 0 or 1.")
            if truth[cell]:
                row.append(name)
        if not row and not allow_empty:
            bad.append(i)
        sets.append(tuple(row))
    return sets, bad


def multi_hot(sets, names):
    """float32 [N, L]: 1 where example n has label names[l]."""
    index = {name: i for i, name in enumerate(names)}
    out = np.zeros((len(sets), len(names)), np.float32)
    for n, labels in enumerate(sets):
        out[n, [index[name] for name in labels]] = 1.0
    return out


def split_label_sets(sets, fractions, seed, where="the data", names=None):
    """`(names, parts)`: label names sorted from the data, and seeded index arrays [train, validation, test].

    Raises:
        UserError: fewer than two labels, or a label the train split never shows (it only occurs in
            validation or test: the model could not learn it).
    """
    names = sorted({name for labels in sets for name in labels}) if names is None else list(names)
    if len(names) < 2:
        raise UserError(f"{where}: {'only ' + repr(names[0]) if names else 'no labels'}; multi_label needs at least"
                        " two label names.")
    parts = seeded_split(len(sets), fractions, seed)
    parts = [np.sort(p) for p in parts]
    in_train = {name for i in parts[0] for name in sets[i]}
    for split, part in zip(("validation", "test"), parts[1:]):
        missing = sorted({name for i in part for name in sets[i]} - in_train)
        if missing:
            raise UserError(f"{where}: label(s) {', '.join(repr(m) for m in missing)} occur only in the {split} split,"
                            " never in train; add examples with them or remove them (or change --seed).")
    return names, parts


def label_matrix(dataset):
    """float32 [N, L]: every multi-hot label of an unbatched `(inputs, labels)` tf.data dataset."""
    batches = [np.asarray(y, np.float32) for y in dataset.map(lambda x, y: y).batch(4096).as_numpy_iterator()]
    return np.concatenate(batches) if batches else np.zeros((0, 0), np.float32)


def positive_weights(train_labels, positive_weight=1.0, balanced=False):
    """float32 [L]: the weight of each label's positive term in binary cross-entropy.

    Args:
        train_labels: multi-hot [N, L] of the train split.
        positive_weight: one factor for every label.
        balanced: class_weight=auto: times negatives / positives of each label (capped at 20).

    Examples:
        >>> positive_weights(np.array([[1, 0], [1, 0], [0, 1], [1, 0]]), balanced=True).tolist()
        [0.3333333432674408, 3.0]
    """
    labels = np.asarray(train_labels, np.float64)
    weights = np.full(labels.shape[1], float(positive_weight))
    if balanced:
        positives = labels.sum(axis=0)
        weights *= np.clip((len(labels) - positives) / np.maximum(positives, 1.0), 1.0 / MAX_POSITIVE_WEIGHT,
                           MAX_POSITIVE_WEIGHT)
    return weights.astype(np.float32)


def label_set_text(row, names, separator=";"):
    """The names of a multi-hot (or bool) row joined by `separator`: how predictions.csv writes a label set."""
    return separator.join(name for name, on in zip(names, np.asarray(row)) if on)
