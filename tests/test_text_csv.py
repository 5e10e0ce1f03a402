"""CSV/TSV files for `text_csv` as spreadsheet programs and Python's csv module write them."""
import codecs
import csv

import pytest

from helpers import assert_one_line_error
from tl_app.errors import UserError
from tl_app.text.files import csv_texts, read_table

# Texts a spreadsheet holds: line breaks, the delimiters, quotes, non-ASCII, padding.
ROWS = [
    ("Line one\nline two", "pos"),
    ('He said "great", then left; twice', "neg"),
    ("a\ttab, a comma", "pos"),
    ("ünïcödé ✓ film", "neg"),
    ("  padded text  ", " pos "),
]


@pytest.mark.parametrize("delimiter, suffix", [(",", ".csv"), (";", ".csv"), ("\t", ".tsv")])
def test_spreadsheet_files_read_back_record_for_record(tmp_path, delimiter, suffix):
    path = tmp_path / f"data{suffix}"
    with open(path, "w", newline="", encoding="utf-8-sig") as f:  # a BOM, as Excel's "CSV UTF-8" writes
        writer = csv.writer(f, delimiter=delimiter)  # CRLF line endings, quotes doubled: the csv module's defaults
        writer.writerow(["id", "text", "label"])
        writer.writerows((i, text, label) for i, (text, label) in enumerate(ROWS))
    raw = path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8) and raw.count(b"\r\n") == len(ROWS) + 1 and b'""great""' in raw

    table = read_table(str(path), "text", "label")
    assert table.delimiter == delimiter
    assert table.texts == [text for text, _ in ROWS]
    assert table.labels == [label.strip() for _, label in ROWS]
    assert table.skipped == 0 and table.invalid_utf8 == 0


def _bad_rows_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(
        b"text,label\n"
        b"good film,pos\n"
        b"an unquoted, comma,neg\n"  # line 3: three fields
        b",neg\n"  # line 4: no text
        b'"a text over\ntwo lines",\n'  # lines 5-6: no label
        b"\n"  # a blank line is no row
        b"bad film,neg\n"  # line 8
        b"caf\xe9 film,pos\n"  # line 9: Latin-1, not UTF-8
    )
    return str(path)


def test_malformed_rows_are_skipped_counted_and_named_by_line(tmp_path):
    path = _bad_rows_file(tmp_path)
    table = read_table(path, "text", "label")
    assert table.texts == ["good film", "bad film", "caf\ufffd film"]
    assert table.labels == ["pos", "neg", "pos"]
    assert table.skipped == 3
    assert table.first_skipped == [(3, "3 field(s), the header has 2"), (4, "empty text ('text')"),
                                   (5, "empty label ('label')")]
    notes = "\n".join(table.notes(path))
    assert "skipped 3 row(s) (line 3: 3 field(s), the header has 2; line 4: empty text ('text'); line 5:" in notes
    assert "on_bad_row=error" in notes and "1 row(s) not valid UTF-8" in notes

    raw = csv_texts(path, "text", "label", validation_fraction=0.2, test_fraction=0.3)
    assert raw.class_names == ["neg", "pos"]  # no class " comma" from the shifted row, no class ""


def test_on_bad_row_error_stops_at_the_first(tmp_path):
    with pytest.raises(UserError, match=r"bad.csv, line 3: 3 field\(s\), the header has 2; .*quote"):
        read_table(_bad_rows_file(tmp_path), "text", "label", on_bad_row="error")


def test_more_skipped_rows_than_shown(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("text,label\n" + "".join(f"text {i},\n" for i in range(8)) + "ok,pos\n")
    table = read_table(str(path), "text", "label")
    assert table.skipped == 8 and [line for line, _ in table.first_skipped] == [2, 3, 4, 5, 6]
    assert "line 6: empty label ('label'), ...)" in table.notes(str(path))[1]


@pytest.mark.parametrize("delimiter", ["", ";;", "\\t\\t", '"', "tab-separated"])
def test_a_delimiter_is_one_character(workdir, cli, delimiter, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,b\n")
    with pytest.raises(UserError, match="a delimiter is one character"):
        read_table(str(path), "text", "label", delimiter=delimiter)
    # The run stops before the encoder or the data is loaded.
    line = assert_one_line_error(cli("run", "text_csv", "--data-dir", str(path), "--set", f"delimiter={delimiter}"),
                                 "a delimiter is one character")
    assert "--set delimiter=none detects it" in line


def test_on_bad_row_and_bad_rows_through_the_cli(workdir, cli, tmp_path):
    from text_helpers import write_tiny_bert_preset

    preset = write_tiny_bert_preset(tmp_path / "tiny")
    line = assert_one_line_error(cli("run", "text_csv", "--data-dir", _bad_rows_file(tmp_path), "--set",
                                     f"preset={preset}", "--set", "on_bad_row=error"), "line 3: 3 field(s)")
    assert "on_bad_row=skip" in line
    assert_one_line_error(cli("run", "text_csv", "--set", "on_bad_row=warn"), "on_bad_row=warn", "skip, error")
