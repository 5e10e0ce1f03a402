"""The "Data issues" section of report.md: counts, then the top findings of each kind with thumbnails
(pictures, drawn into `data_issues.png`) or excerpts (texts)."""
import numpy as np

from tl_app.inspect.findings import COUNTS, CSV_FILE, ISSUES

FIGURE = "data_issues.png"
TOP = 5  # findings of each kind in the report (all of them are in data_issues.csv)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def section_lines(inspection, figure=None, without_leaks=None, excluded=None):
    """Markdown lines of the section.

    Args:
        inspection: the `Inspection`.
        figure: the thumbnails' file name beside the report, or None (texts).
        without_leaks: `{metric: value}` of the test split without leaked examples, or None.
        excluded: how many training examples `exclude_issues` left out, or None.

    Examples:
        >>> from tl_app.inspect.inspection import Inspection
        >>> from tl_app.inspect.findings import Finding, counts
        >>> found = [Finding("train", 4, "a.png", "label", "cat", "dog", 0.9)]
        >>> lines = section_lines(Inspection(found, counts(found)))
        >>> lines[0], lines[6]
        ('## Data issues', '| label_issues | 1 |')
    """
    lines = ["## Data issues", "",
             f"Found from the frozen base's features; every finding is in `{CSV_FILE}` (most certain first).", "",
             "| finding | count |", "| --- | --- |",
             *[f"| {COUNTS[kind]} | {inspection.counts[COUNTS[kind]]} |" for kind in ISSUES]]
    if without_leaks:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in without_leaks.items())
        lines += ["", f"Test metrics without the {inspection.counts['leaks']} leaked example(s): {shown}."]
    if excluded is not None:
        lines += ["", f"Trained without {excluded} flagged training example(s) (`exclude_issues`; list in "
                      "`excluded.csv`)."]
    for kind in ISSUES:
        top = [f for f in inspection.findings if f.issue == kind][:TOP]
        if not top:
            continue
        lines += ["", f"### {kind} (top {len(top)})", "",
                  "| split | index | input | given | suggested | score | other |", "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {f.split} | {f.index} | {_cell(f.input)} | {_cell(f.given_label)} | {_cell(f.suggested_label)} | "
                  f"{f.score:.4f} | {_cell(f.other_input)} |" for f in top]
    if figure:
        lines += ["", f"![data issues]({figure})"]
    return lines


def thumbnails_png(inspection, datasets, limit=4):
    """PNG bytes of the top `limit` findings of each kind (a pair followed by its twin), drawn with the
    evaluation's example grid; None when there is nothing to draw or the inputs are not pictures.

    Args:
        inspection: the `Inspection`.
        datasets: `{split: unbatched (inputs, label) dataset}`.
    """
    from tl_app.evaluate.plots import examples_png, is_image_like
    from tl_app.evaluate.predictions import inputs_at

    shown = [f for kind in ISSUES for f in [f for f in inspection.findings if f.issue == kind][:limit]]
    if not shown:
        return None
    places, titles = [], []
    for f in shown:
        change = f" -> {f.suggested_label}" if f.suggested_label else ""
        places.append((f.split, f.index))
        titles.append(f"{f.issue} {f.split}[{f.index}]\n{f.given_label}{change}")
        if f.other_split is not None:
            places.append((f.other_split, f.other_index))
            titles.append(f"its twin\n{f.other_split}[{f.other_index}]")
    images = inputs_at(datasets, places)
    if not is_image_like(np.asarray(images[0])):
        return None
    return examples_png(images, titles, [False] * len(images), columns=min(8, len(images)), tile=96)
