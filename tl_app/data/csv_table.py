"""CSV/TSV tables with a header row, read as spreadsheet programs write them (the text and image CSV recipes).

`read_columns` reads the named columns in one pass with the csv module: quoted fields, a UTF-8 BOM,
CRLF line endings, bytes that are not UTF-8 (replaced and counted), and rows with the wrong number of
fields or an empty value (skipped and counted, or an error).
"""
import csv
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from tl_app.errors import UserError

CSV_SNIFF_CHARS = 64 * 1024
FIELD_SIZE_LIMIT = 2**31 - 1  # the largest the csv module takes on every platform
ON_BAD_ROW = ("skip", "error")
SHOWN_BAD_ROWS = 5  # skipped rows named in the log
NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of bytes that are not UTF-8


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
            value, ok = _valid_utf8(row[i].strip() if kind in ("label", "label_set", "path") else row[i])
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
        columns: `(kind, header name)` of the columns to read; kind "text", "path", "label" (stripped) or
            "label_set" (stripped, may be empty: label_mode=multi_label).
        delimiter: None to use the extension (.tsv -> tab) or sniff; one character; "\\t" or "tab" for tabs.
        on_bad_row: "skip" or "error".
        fix: how the user names other columns (for the message when one is missing).

    Returns:
        a `Table`.
    """
    if not os.path.isfile(path):
        raise UserError(f"--data-dir {path}: no such file; give a CSV/TSV file with a header row.")
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
