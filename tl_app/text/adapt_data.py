"""The text a masked-LM adaptation trains on, and the held-out slice its perplexity is measured on.

`adapt_data` (text recipes) or `--data-dir` (`text_mlm`) names one of:

- a folder: every `.txt` file below it (recursively, in sorted order) is one document;
- a `.csv`, `.tsv` or `.tab` file: one document a row, from the column `adapt_column` (default `text`);
- any other file: plain text, one document a line (blank lines skipped).

Unset in a text recipe, it is that recipe's training texts with their labels
ignored (never its validation or test texts). Text that is not valid UTF-8 is
decoded with replacement characters and counted; files that are not text at
all (NUL bytes: images, archives, ...) are skipped and counted, and data with
no text in it stops the run with one line naming the problem.
"""
import os
from dataclasses import dataclass, field
from typing import List

import numpy as np

from tl_app.errors import UserError
from tl_app.text.files import read_columns, read_text

TABLE_EXTENSIONS = (".csv", ".tsv", ".tab")
BINARY_PROBE_BYTES = 8192
KINDS = "a folder of .txt files, a text file with one document a line, or a .csv/.tsv file"


@dataclass
class AdaptationTexts:
    """The adaptation text, split into what trains and what is held out for perplexity.

    Args:
        train: documents the masked LM trains on.
        heldout: documents only evaluated (perplexity before and after), never trained on.
        source: where they come from, for the log.
        notes: lines for the run log (skipped files, undecodable bytes, ...).
    """

    train: List[str]
    heldout: List[str]
    source: str
    notes: List[str] = field(default_factory=list)


def _is_binary(path):
    with open(path, "rb") as f:
        return b"\0" in f.read(BINARY_PROBE_BYTES)


def _folder_texts(folder, what):
    paths = sorted(os.path.join(d, name) for d, _, names in os.walk(folder) for name in names
                   if name.lower().endswith(".txt"))
    if not paths:
        raise UserError(f"{what}={folder}: no .txt files in it; give {KINDS}.")
    texts, binary, invalid = [], [], []
    for path in paths:
        if _is_binary(path):
            binary.append(path)
            continue
        text, valid = read_text(path)
        texts.append(text)
        if not valid:
            invalid.append(path)
    notes = []
    if binary:
        notes.append(f"skipped {len(binary)} .txt file(s) that are not text (e.g. {binary[0]})")
    if invalid:
        notes.append(f"{len(invalid)} file(s) not valid UTF-8, decoded with replacement characters (e.g. {invalid[0]})")
    if not texts:
        raise UserError(f"{what}={folder}: none of its {len(paths)} .txt files is text (they hold NUL bytes); give {KINDS}.")
    return texts, f"{len(texts)} .txt files under {folder}", notes


def _table_texts(path, column, what):
    if _is_binary(path):
        raise UserError(f"{what}={path}: not a text file (it holds NUL bytes); give {KINDS}.")
    table = read_columns(path, [("text", column)], fix="--set adapt_column=...")
    return table.values[column], f"column '{column}' of {path}", table.notes(path)


def _line_texts(path, what):
    if _is_binary(path):
        raise UserError(f"{what}={path}: not a text file (it holds NUL bytes); give {KINDS}.")
    text, valid = read_text(path)
    notes = [] if valid else [f"{path}: not valid UTF-8, decoded with replacement characters"]
    return text.splitlines(), f"lines of {path}", notes


def read_adapt_texts(spec, column="text", what="--set adapt_data"):
    """(documents, where they come from, notes) of a folder, table or text file; UserError when there is no text.

    Args:
        spec: the path (see the module docstring).
        column: the column of a CSV/TSV file.
        what: how the user named the path, for messages (`--set adapt_data` or `--data-dir`).

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
        >>> _ = open(path, "w").write("first document\\n\\nsecond document\\n")
        >>> read_adapt_texts(path)[0]
        ['first document', 'second document']
    """
    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        texts, source, notes = _folder_texts(path, what)
    elif os.path.isfile(path) and path.lower().endswith(TABLE_EXTENSIONS):
        texts, source, notes = _table_texts(path, column, what)
    elif os.path.isfile(path):
        texts, source, notes = _line_texts(path, what)
    else:
        raise UserError(f"{what}={spec}: no such file or directory; give {KINDS}.")
    kept = [t for t in texts if t.strip()]
    if len(kept) < len(texts):
        notes.append(f"dropped {len(texts) - len(kept)} empty document(s)")
    if not kept:
        raise UserError(f"{what}={spec}: no text in it (every document is empty); give {KINDS}.")
    return kept, source, notes


def hold_out(texts, fraction, seed, source, notes=()):
    """AdaptationTexts with a seeded `fraction` of `texts` (at least one) held out for perplexity.

    Args:
        texts: the documents.
        fraction: share held out, in (0, 1).
        seed: the run's seed (the same slice every run with it).
        source, notes: as in `AdaptationTexts`.
    """
    if len(texts) < 2:
        raise UserError(f"the adaptation text ({source}) has {len(texts)} document(s); it needs at least 2"
                        " (one is held out to measure perplexity).")
    n_heldout = min(len(texts) - 1, max(1, int(round(fraction * len(texts)))))
    order = np.random.default_rng(seed).permutation(len(texts))
    heldout = sorted(order[:n_heldout])
    train = sorted(order[n_heldout:])
    return AdaptationTexts(train=[texts[i] for i in train], heldout=[texts[i] for i in heldout], source=source,
                           notes=list(notes))
