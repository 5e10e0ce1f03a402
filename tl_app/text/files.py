"""Texts from files: class folders of .txt files, and CSV/TSV tables.

Both give `RawTexts`: per split a list of strings and an int label array, plus
the class names and lines worth telling the user (files not valid UTF-8,
which are decoded with replacement characters and counted).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from tl_app.data.csv_table import (ON_BAD_ROW, Table, check_delimiter, read_columns)  # noqa: F401  (text.files' API)
from tl_app.data.splits import stratified_indices
from tl_app.errors import UserError

TEXT_EXTENSIONS = (".txt",)


@dataclass
class RawTexts:
    """`{split: (texts, labels)}` for train/validation/test, the class names, notes for the log.

    Args:
        splits: split name -> (list of str, int64 array of labels).
        class_names: index = label.
        notes: lines for the run log.
        test_split_name: what the "test" split really is (e.g. "validation" for sst2).
    """

    splits: Dict[str, Tuple[List[str], np.ndarray]]
    class_names: List[str]
    notes: List[str] = field(default_factory=list)
    test_split_name: str = "test"


def read_text(path):
    """(text, was_valid_utf8): the file decoded as UTF-8, invalid bytes replaced by U+FFFD."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def text_folder_texts(data_dir, validation_fraction=0.1, test_fraction=0.2, seed=42):
    """RawTexts of a class-folder data set (`tl_app.data.class_folders` layout rules) of .txt files.

    Args:
        data_dir: DIR/<class>/*.txt, or DIR/train|test[/validation]/<class>/*.txt.
        validation_fraction, test_fraction: seeded, stratified fractions when the layout has no such split.
        seed: seed of the split.
    """
    from tl_app.data.class_folders import scan_class_folders

    found = scan_class_folders(data_dir, TEXT_EXTENSIONS, "text", validation_fraction=validation_fraction,
                               test_fraction=test_fraction, seed=seed)
    invalid = []
    splits = {}
    for split, files in found.files.items():
        texts = []
        for path, _ in files:
            text, valid = read_text(path)
            texts.append(text)
            if not valid:
                invalid.append(path)
        splits[split] = (texts, np.array([label for _, label in files], np.int64))
    notes = [f"text files: {found.layout}; {sum(len(t) for t, _ in splits.values())} files"]
    if found.ignored:
        notes.append(f"ignored {len(found.ignored)} file(s) that are not {', '.join(TEXT_EXTENSIONS)}"
                     f" (e.g. {found.ignored[0]})")
    if invalid:
        notes.append(f"{len(invalid)} file(s) not valid UTF-8, decoded with replacement characters"
                     f" (e.g. {invalid[0]})")
    return RawTexts(splits=splits, class_names=found.class_names, notes=notes)


def read_table(path, text_column, label_column, delimiter=None, on_bad_row="skip"):
    """A labeled CSV/TSV file's texts and labels (`read_columns`); returns a `Table`.

    Args:
        path: the file.
        text_column, label_column: header names of the two columns used.
        delimiter: None to use the extension (.tsv -> tab) or sniff; one character; "\\t" or "tab" for tabs.
        on_bad_row: "skip" or "error".

    Examples:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "reviews.csv")
        >>> with open(path, "w", newline="") as f:
        ...     _ = f.write('text,label\\r\\n"good, ""very"" good\\r\\nfilm",pos\\r\\nno label,\\r\\n')
        >>> table = read_table(path, "text", "label")
        >>> table.texts, table.labels, table.first_skipped
        (['good, "very" good\\r\\nfilm'], ['pos'], [(4, "empty label ('label')")])
    """
    return read_columns(path, [("text", text_column), ("label", label_column)], delimiter, on_bad_row)


def csv_texts(path, text_column, label_column, delimiter=None, validation_fraction=0.1, test_fraction=0.2, seed=42,
              on_bad_row="skip"):
    """RawTexts from one CSV/TSV file (`read_table`): label names from the data (sorted), stratified seeded splits."""
    table = read_table(path, text_column, label_column, delimiter, on_bad_row)
    texts, label_strings = table.texts, table.labels
    class_names = sorted(set(label_strings))
    if len(class_names) < 2:
        found = f"only '{class_names[0]}'" if class_names else "no labels"
        raise UserError(f"{path}: column '{label_column}' has {found}; a classifier needs at least two classes.")
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[s] for s in label_strings], np.int64)
    parts = stratified_indices(labels, len(class_names), (validation_fraction, test_fraction), seed)
    splits = {name: ([texts[i] for i in part], labels[part]) for name, part in zip(("train", "validation", "test"), parts)}
    if not len(splits["train"][0]) or not len(splits["test"][0]):
        raise UserError(f"{path}: {len(texts)} rows are too few to split into train and test; add more rows.")
    return RawTexts(splits=splits, class_names=class_names, notes=table.notes(path))


def csv_label_set_texts(path, config):
    """RawTexts of a multi-label CSV/TSV file (`tl_app.data.label_sets.read_label_set_table`): labels [N, L] multi-hot.

    Args:
        path: the file.
        config: the recipe's config (text_column, label_column or label_columns, label_separator,
            allow_empty_labels, delimiter, on_bad_row, validation_fraction, test_fraction, seed).
    """
    from tl_app.data.label_sets import read_label_set_table

    texts, labels, names, parts, notes = read_label_set_table(path, "text", config.text_column, config)
    splits = {name: ([texts[i] for i in part], labels[part]) for name, part in zip(("train", "validation", "test"), parts)}
    return RawTexts(splits=splits, class_names=names, notes=notes)
