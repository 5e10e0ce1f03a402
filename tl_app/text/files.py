"""Texts from files: class folders of .txt files, and CSV/TSV tables.

Both give `RawTexts`: per split a list of strings and an int label array, plus
the class names and lines worth telling the user (files not valid UTF-8,
which are decoded with replacement characters and counted).
"""
import csv
import os
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from tl_app.data.splits import stratified_indices
from tl_app.errors import UserError

TEXT_EXTENSIONS = (".txt",)
CSV_SNIFF_BYTES = 64 * 1024


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


def _delimiter(path, head, delimiter):
    """The CSV delimiter: the configured one, else by extension (.tsv/.tab), else sniffed."""
    if delimiter:
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    try:
        return csv.Sniffer().sniff(head, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def read_columns(path, columns, delimiter=None, fix="--set text_column=... --set label_column=..."):
    """({column: list of str}, notes) from a CSV/TSV file with a header row.

    Args:
        path: the file.
        columns: header names of the columns to read.
        delimiter: None to use the extension (.tsv -> tab) or sniff; "\\t" or "tab" for tabs.
        fix: how the user names other columns (for the message when one is missing).
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        content, valid = raw.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        content, valid = raw.decode("utf-8", errors="replace"), False
    sep = _delimiter(path, content[:CSV_SNIFF_BYTES], delimiter)
    rows = csv.reader(content.splitlines(), delimiter=sep)
    header = next(rows, None)
    wanted = " and ".join(repr(c) for c in columns)
    if not header:
        raise UserError(f"{path}: empty file; expected a header row with {wanted} column(s).")
    header = [h.strip() for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        shown = ", ".join(repr(h) for h in header)
        raise UserError(f"{path}: no column(s) {', '.join(repr(m) for m in missing)}; its columns are {shown} ({fix}).")
    indices = [header.index(c) for c in columns]
    values, short = {c: [] for c in columns}, 0
    for row in rows:
        if not row:
            continue
        if len(row) <= max(indices):
            short += 1
            continue
        for column, i in zip(columns, indices):
            values[column].append(row[i])
    notes = [f"{path}: {len(values[columns[0]])} rows (delimiter {sep!r})"]
    if short:
        notes.append(f"{path}: skipped {short} row(s) with fewer columns than the header")
    if not valid:
        notes.append(f"{path}: not valid UTF-8, decoded with replacement characters")
    return values, notes


def read_table(path, text_column, label_column, delimiter=None):
    """(texts, label strings, notes) from a CSV/TSV file with a header row.

    Args:
        path: the file.
        text_column, label_column: header names of the two columns used.
        delimiter: None to use the extension (.tsv -> tab) or sniff; "\\t" or "tab" for tabs.
    """
    if not os.path.isfile(path):
        raise UserError(f"--data-dir {path}: no such file; text_csv needs a CSV/TSV file with a header row.")
    values, notes = read_columns(path, [text_column, label_column], delimiter)
    return values[text_column], [label.strip() for label in values[label_column]], notes


def csv_texts(path, text_column, label_column, delimiter=None, validation_fraction=0.1, test_fraction=0.2, seed=42):
    """RawTexts from one CSV/TSV file: label names from the data (sorted), stratified seeded splits."""
    texts, label_strings, notes = read_table(path, text_column, label_column, delimiter)
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
    return RawTexts(splits=splits, class_names=class_names, notes=notes)
