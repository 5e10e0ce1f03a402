"""Texts from files: class folders of .txt files, and CSV/TSV tables.

Both give `RawTexts`: per split a list of strings and an int label array, plus
the class names and lines worth telling the user (files not valid UTF-8,
which are decoded with replacement characters and counted).
"""
import csv
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from tl_app.data.splits import stratified_indices
from tl_app.errors import UserError

TEXT_EXTENSIONS = (".txt",)
CSV_SNIFF_CHARS = 64 * 1024
FIELD_SIZE_LIMIT = 2**31 - 1  # the largest the csv module takes on every platform
ON_BAD_ROW = ("skip", "error")
SHOWN_BAD_ROWS = 5  # skipped rows named in the log
NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of bytes that are not UTF-8


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


def check_delimiter(delimiter):
    """The one-character CSV delimiter that the `delimiter` config field names, or None to detect it.

    Args:
        delimiter: None (detect), one character, or "\\t" / "tab" for a tab.

    Raises:
        UserError: for an empty value, more than one character, a quote or a line break.

    Examples:
        >>> check_delimiter(";"), check_delimiter("tab"), check_delimiter(None)
        (';', '\\t', None)
    """
    if delimiter is None:
        return None
    sep = "\t" if delimiter in ("\\t", "tab") else delimiter
    if len(sep) != 1 or sep in '"\r\n':
        raise UserError(f"--set delimiter={delimiter!r}: a delimiter is one character other than a quote or a line"
                        " break, e.g. --set delimiter=';' or --set delimiter=tab; --set delimiter=none detects it.")
    return sep


def _detect_delimiter(path, head):
    """Tab for .tsv/.tab files, else what csv.Sniffer finds in the file's head, else a comma."""
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    try:
        return csv.Sniffer().sniff(head, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


@dataclass
class Table:
    """What `read_columns` kept of a CSV/TSV file, and what it skipped.

    Args:
        values: column name -> the kept rows' values (a label column's stripped).
        delimiter: the delimiter used.
        skipped: how many rows were skipped (wrong number of fields, an empty value).
        first_skipped: `(line, reason)` of the first few skipped rows (line: where the row starts).
        invalid_utf8: how many kept rows held bytes that are not UTF-8 (replaced by U+FFFD).
        columns: `(kind, name)` of the columns read, e.g. `[("text", "review"), ("label", "stars")]`.
    """

    values: Dict[str, List[str]]
    delimiter: str
    skipped: int = 0
    first_skipped: List[Tuple[int, str]] = field(default_factory=list)
    invalid_utf8: int = 0
    columns: List[Tuple[str, str]] = field(default_factory=list)

    def _of(self, kind):
        return self.values[next(name for k, name in self.columns if k == kind)]

    @property
    def texts(self):
        return self._of("text")

    @property
    def labels(self):
        return self._of("label")

    def notes(self, path):
        """Lines for the run log."""
        notes = [f"{path}: {len(next(iter(self.values.values())))} rows (delimiter {self.delimiter!r})"]
        if self.skipped:
            shown = "; ".join(f"line {line}: {reason}" for line, reason in self.first_skipped)
            more = ", ..." if self.skipped > len(self.first_skipped) else ""
            notes.append(f"{path}: skipped {self.skipped} row(s) ({shown}{more}); --set on_bad_row=error stops at the"
                         " first instead")
        if self.invalid_utf8:
            notes.append(f"{path}: {self.invalid_utf8} row(s) not valid UTF-8, decoded with replacement characters")
        return notes


def _header(path, reader, columns, fix):
    header = next((row for row in reader if row), None)  # blank lines before the header are no header
    wanted = " and ".join(f"'{name}'" for _, name in columns)
    if not header:
        raise UserError(f"{path}: empty file; expected a header row with {wanted} column(s).")
    header = [h.strip() for h in header]
    missing = [name for _, name in columns if name not in header]
    if missing:
        shown = ", ".join(repr(h) for h in header)
        raise UserError(f"{path}: no column(s) {', '.join(repr(m) for m in missing)}; its columns are {shown} ({fix}).")
    return header


def _problem(row, width, indices, columns):
    """Why a row cannot be used, or None."""
    if len(row) != width:
        return f"{len(row)} field(s), the header has {width}"
    for i, (kind, name) in zip(indices, columns):
        if kind != "label_set" and not row[i].strip():  # an empty label set is the caller's to judge
            return f"empty {kind} ('{name}')"
    return None


def _valid_utf8(value):
    """`value` with the bytes `surrogateescape` kept (not UTF-8) replaced by U+FFFD, and whether there were none."""
    replaced, count = NOT_UTF8.subn("\ufffd", value)
    return replaced, count == 0


def _read_rows(path, reader, columns, delimiter, on_bad_row, fix):
    header = _header(path, reader, columns, fix)
    indices, width = [header.index(name) for _, name in columns], len(header)
    table = Table(values={name: [] for _, name in columns}, delimiter=delimiter, columns=list(columns))
    end = reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num  # physical lines: a quoted field may span several
        if not row:
            continue  # a blank line holds no row
        problem = _problem(row, width, indices, columns)
        if problem:
            if on_bad_row == "error":
                raise UserError(f"{path}, line {start}: {problem}; fix the row (quote a field that holds the delimiter"
                                f" {delimiter!r}), or --set on_bad_row=skip to skip such rows.")
            table.skipped += 1
            if len(table.first_skipped) < SHOWN_BAD_ROWS:
                table.first_skipped.append((start, problem))
            continue
        valid = True
        for i, (kind, name) in zip(indices, columns):
            value, ok = _valid_utf8(row[i].strip() if kind in ("label", "label_set") else row[i])
            table.values[name].append(value)
            valid = valid and ok
        table.invalid_utf8 += not valid
    return table


def read_columns(path, columns, delimiter=None, on_bad_row="skip", fix="--set text_column=... --set label_column=..."):
    """The rows of a CSV/TSV file with a header row, read in one pass with the csv module.

    Quoted fields may hold the delimiter, line breaks and doubled quotes; a UTF-8 BOM and CRLF
    line endings (as spreadsheet programs save files) are handled. A row with another number of
    fields than the header, or an empty value in a wanted column, is skipped and counted (its line
    named in the notes), or stops the read with `on_bad_row="error"`. Bytes that are not UTF-8 are
    replaced by U+FFFD and counted. Blank lines are ignored.

    Args:
        path: the file.
        columns: `(kind, header name)` of the columns to read; kind "text", "label" (stripped) or
            "label_set" (stripped, may be empty: label_mode=multi_label).
        delimiter: None to use the extension (.tsv -> tab) or sniff; one character; "\\t" or "tab" for tabs.
        on_bad_row: "skip" or "error".
        fix: how the user names other columns (for the message when one is missing).

    Returns:
        a `Table`.
    """
    if not os.path.isfile(path):
        raise UserError(f"--data-dir {path}: no such file; text_csv needs a CSV/TSV file with a header row.")
    if on_bad_row not in ON_BAD_ROW:
        raise UserError(f"--set on_bad_row={on_bad_row}: choose one of {', '.join(ON_BAD_ROW)}.")
    sep = check_delimiter(delimiter)
    limit = csv.field_size_limit()
    csv.field_size_limit(FIELD_SIZE_LIMIT)  # the default (128 KiB) is shorter than some documents
    try:
        # newline="": the csv module sees line breaks inside quoted fields as they are (its docs require it).
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            if sep is None:
                sep = _detect_delimiter(path, f.read(CSV_SNIFF_CHARS))
                f.seek(0)
            reader = csv.reader(f, delimiter=sep)
            try:
                return _read_rows(path, reader, columns, sep, on_bad_row, fix)
            except csv.Error as exc:
                raise UserError(f"{path}, line {reader.line_num + 1}: not readable as CSV ({exc}).") from None
    except OSError as exc:
        raise UserError(f"--data-dir {path}: cannot be read ({exc.strerror or exc}).") from None
    finally:
        csv.field_size_limit(limit)


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
    """RawTexts of a multi-label CSV/TSV file: labels [N, L] multi-hot, names sorted from the data, seeded splits.

    A row's labels come from `config.label_column` (names joined by `config.label_separator`) or, with
    `config.label_columns="a,b,c"`, from those 0/1 columns. Rows with no label are kept as "none of them"
    with `config.allow_empty_labels`, else skipped and counted (or an error with on_bad_row=error).

    Args:
        path: the file.
        config: the recipe's config (text_column, label_column, label_columns, label_separator,
            allow_empty_labels, delimiter, on_bad_row, validation_fraction, test_fraction, seed).
    """
    from tl_app.data import label_sets as ls

    cfg = config
    wanted = [n.strip() for n in cfg.label_columns.split(",") if n.strip()] if cfg.label_columns else []
    columns = [("text", cfg.text_column)] + ([("label", n) for n in wanted] if wanted else
                                             [("label_set", cfg.label_column)])
    fix = "--set text_column=... --set " + ("label_columns=a,b,c" if wanted else "label_column=...")
    table = read_columns(path, columns, cfg.delimiter, cfg.on_bad_row, fix)
    if wanted:
        sets, bad = ls.column_label_sets(wanted, table.values, cfg.allow_empty_labels, path)
    else:
        ls.check_separator(table.values[cfg.label_column], cfg.label_separator, f"{path}, column '{cfg.label_column}'")
        sets, bad = ls.label_sets(table.values[cfg.label_column], cfg.label_separator, cfg.allow_empty_labels)
    notes = table.notes(path)
    if bad:
        if cfg.on_bad_row == "error":
            raise UserError(f"{path}: data row {bad[0] + 1} has no label; --set allow_empty_labels=true keeps such"
                            " rows as 'none of the labels', or --set on_bad_row=skip skips them.")
        notes.append(f"{path}: skipped {len(bad)} row(s) with no label (--set allow_empty_labels=true keeps them)")
    keep = sorted(set(range(len(sets))) - set(bad))
    texts, sets = [table.texts[i] for i in keep], [sets[i] for i in keep]
    names, parts = ls.split_label_sets(sets, (cfg.validation_fraction, cfg.test_fraction), cfg.seed, path,
                                       names=wanted or None)
    labels = ls.multi_hot(sets, names)
    splits = {name: ([texts[i] for i in part], labels[part]) for name, part in zip(("train", "validation", "test"), parts)}
    if not len(splits["train"][0]) or not len(splits["test"][0]):
        raise UserError(f"{path}: {len(texts)} rows are too few to split into train and test; add more rows.")
    counts = ", ".join(f"{n} {int(c)}" for n, c in zip(names, labels.sum(axis=0)))
    notes.append(f"{path}: {len(names)} labels, {labels.sum(axis=1).mean():.2f} per row on average ({counts})")
    return RawTexts(splits=splits, class_names=names, notes=notes)
