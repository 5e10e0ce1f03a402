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
    fixed_threshold: Optional[float] = None  # multi_label: one threshold for every label instead (e.g. 0.5)


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
    if config.fixed_threshold is not None and not 0.0 < config.fixed_threshold < 1.0:
        raise UserError(f"--set fixed_threshold={config.fixed_threshold}: must be in (0, 1), or none to tune one"
                        " threshold per label on validation.")


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


def read_label_set_table(path, item_kind, item_column, config):
    """The rows of a multi-label CSV/TSV file: `(items, labels [N, L] multi-hot, names, [train, validation, test]
    index arrays, notes)`.

    A row's labels come from `config.label_column` (names joined by `config.label_separator`) or, with
    `config.label_columns="a,b,c"`, from those 0/1 columns. Rows with no label are kept as "none of them"
    with `config.allow_empty_labels`, else skipped and counted (or an error with on_bad_row=error).

    Args:
        path: the file.
        item_kind, item_column: the kind ("text", "path") and header name of the column holding the examples.
        config: label_column, label_columns, label_separator, allow_empty_labels, delimiter, on_bad_row,
            validation_fraction, test_fraction, seed.
    """
    from tl_app.data.csv_table import read_columns

    cfg = config
    wanted = [n.strip() for n in cfg.label_columns.split(",") if n.strip()] if cfg.label_columns else []
    columns = [(item_kind, item_column)] + ([("label", n) for n in wanted] if wanted else [("label_set", cfg.label_column)])
    fix = f"--set {item_kind}_column=... --set " + ("label_columns=a,b,c" if wanted else "label_column=...")
    table = read_columns(path, columns, cfg.delimiter, cfg.on_bad_row, fix)
    if wanted:
        sets, bad = column_label_sets(wanted, table.values, cfg.allow_empty_labels, path)
    else:
        check_separator(table.values[cfg.label_column], cfg.label_separator, f"{path}, column '{cfg.label_column}'")
        sets, bad = label_sets(table.values[cfg.label_column], cfg.label_separator, cfg.allow_empty_labels)
    notes = table.notes(path)
    if bad:
        if cfg.on_bad_row == "error":
            raise UserError(f"{path}: data row {bad[0] + 1} has no label; --set allow_empty_labels=true keeps such"
                            " rows as 'none of the labels', or --set on_bad_row=skip skips them.")
        notes.append(f"{path}: skipped {len(bad)} row(s) with no label (--set allow_empty_labels=true keeps them)")
    keep = sorted(set(range(len(sets))) - set(bad))
    items, sets = [table.values[item_column][i] for i in keep], [sets[i] for i in keep]
    names, parts = split_label_sets(sets, (cfg.validation_fraction, cfg.test_fraction), cfg.seed, path,
                                    names=wanted or None)
    if not len(parts[0]) or not len(parts[2]):
        raise UserError(f"{path}: {len(items)} rows are too few to split into train and test; add more rows.")
    labels = multi_hot(sets, names)
    counts = ", ".join(f"{n} {int(c)}" for n, c in zip(names, labels.sum(axis=0)))
    notes.append(f"{path}: {len(names)} labels, {labels.sum(axis=1).mean():.2f} per row on average ({counts})")
    return items, labels, names, parts, notes


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


class LabelSetHead:
    """Mixin of a family's recipe base class: what `label_mode` changes in its head, loss and metrics.

    single_label: softmax head, the recipe's (sparse categorical) loss, accuracy and macro F1.
    multi_label: sigmoid head, binary cross-entropy with per-label positive weights
    (`positive_weight`, times negatives/positives per label with class_weight=auto), binary accuracy
    and micro F1 at 0.5 per epoch. Put it before `Recipe` in the bases; call `fit_label_weights(data)`
    in `build_model` and build the head with `head_activation()`.

    Examples:
        >>> from tl_app.recipe import Recipe
        >>> class Demo(LabelSetHead, Recipe):
        ...     Config = LabelModeConfig
        >>> Demo(LabelModeConfig(label_mode="multi_label")).head_activation(), Demo().metrics()
        ('sigmoid', ['accuracy', 'f1_macro'])
    """

    reads_label_sets = False  # whether the recipe's data can give an example several labels (a CSV can, folders cannot)
    _positive_weights = None  # multi_label: float [L] from the train labels (fit_label_weights)

    @property
    def multi_label(self):
        return is_multi_label(self.config)

    def check_config(self):
        super().check_config()
        check_label_mode(self.config, self.name or type(self).__name__, self.reads_label_sets)

    def head_activation(self):
        return "sigmoid" if self.multi_label else "softmax"

    def check_label_mode_of(self, data):
        """ValueError when the recipe's data does not have the label mode its config asks for (a recipe bug)."""
        if (data.label_mode == MULTI) != self.multi_label:
            raise ValueError(f"{type(self).__name__} loaded {data.label_mode} data for label_mode={self.config.label_mode}")

    def fit_label_weights(self, data):
        """multi_label: the per-label positive weights of the loss, from `data.train`'s labels."""
        if self.multi_label:
            cfg = self.config
            self._positive_weights = positive_weights(label_matrix(data.train), cfg.positive_weight,
                                                      balanced=cfg.class_weight == "auto")

    def weighs_classes_in_loss(self):
        return self.multi_label  # class_weight=auto: per-label positive weights in the loss

    def loss(self):
        if not self.multi_label:
            return super().loss()
        from tl_app.engine.losses import WeightedBinaryCrossentropy

        weights = self._positive_weights
        return WeightedBinaryCrossentropy(None if weights is None else weights.tolist())

    def metrics(self):
        return ["binary_accuracy", "f1_micro"] if self.multi_label else super().metrics()


def label_set_text(row, names, separator=";"):
    """The names of a multi-hot (or bool) row joined by `separator`: how predictions.csv writes a label set."""
    return separator.join(name for name, on in zip(names, np.asarray(row)) if on)
