"""Findings: the rows of `data_issues.csv` and the counts `metrics.json` holds.

One row per finding: `split`, `index` (position in the split, as in predictions.csv), `input` (file path or
text excerpt), `issue` (`label`, `duplicate`, `leak`, `outlier`), `given_label`, `suggested_label` (label
issues), `score` (label: 1 - self-confidence; duplicate and leak: cosine similarity, 1 for identical content;
outlier: mean cosine distance to the nearest training examples), `other_input` (the twin of a duplicate or
leak). Rows are grouped by kind, most certain first within each.
"""
import csv
import io
import os
from dataclasses import dataclass
from typing import Optional

from tl_app import atomic

ISSUES = ("label", "duplicate", "leak", "outlier")
COUNTS = {"label": "label_issues", "duplicate": "duplicates", "leak": "leaks", "outlier": "outliers"}
CSV_FILE = "data_issues.csv"
COLUMNS = ("split", "index", "input", "issue", "given_label", "suggested_label", "score", "other_input")


@dataclass
class Finding:
    """One row of data_issues.csv (see the module docstring); `other_split`/`other_index` locate the twin."""

    split: str
    index: int
    input: str
    issue: str
    given_label: str
    suggested_label: str = ""
    score: float = 0.0
    other_input: str = ""
    other_split: Optional[str] = None
    other_index: Optional[int] = None

    def row(self):
        return [self.split, self.index, self.input, self.issue, self.given_label, self.suggested_label,
                f"{self.score:.6f}", self.other_input]


def counts(findings):
    """`{label_issues, duplicates, leaks, outliers}`: findings of each kind.

    Examples:
        >>> counts([Finding("test", 3, "a.png", "leak", "cat", score=1.0)])
        {'label_issues': 0, 'duplicates': 0, 'leaks': 1, 'outliers': 0}
    """
    return {COUNTS[kind]: sum(f.issue == kind for f in findings) for kind in ISSUES}


def write_csv(path, findings):
    """`findings` as CSV at `path` (written atomically; an existing file is a new version, never half-written)."""
    def write(binary):
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        writer.writerows(finding.row() for finding in findings)
        text.flush()
        text.detach()  # the caller flushes, syncs and closes the binary file

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic.write_atomic(path, write)
    return path
