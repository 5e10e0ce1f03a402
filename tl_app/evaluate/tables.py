"""The tables of an evaluation: plain text for the terminal, Markdown for report.md and TensorBoard.

Examples:
    >>> m = {"accuracy": 0.75, "loss": 0.5, "precision/cat": 1.0, "recall/cat": 0.5, "f1/cat": 0.667,
    ...      "support/cat": 2.0}
    >>> print(metrics_table(m))
    test metrics
      metric    value
      --------  ------
      accuracy  0.7500
      loss      0.5000
    >>> print(markdown_table(*per_class(m, ["cat"])))
    | class | precision | recall | f1 | support |
    | --- | --- | --- | --- | --- |
    | cat | 1.0000 | 0.5000 | 0.6670 | 2 |
"""
from tl_app.evaluate.metrics import OVERALL, PER_CLASS, is_per_class

FIRST = ("accuracy", "loss")


def overall(metrics):
    """[(name, value)] of the figures that are not per class: accuracy, loss, the rest in a fixed order."""
    order = {name: i for i, name in enumerate(dict.fromkeys(FIRST + OVERALL))}
    names = [k for k in metrics if not is_per_class(k) and isinstance(metrics[k], (int, float))]
    return [(k, metrics[k]) for k in sorted(names, key=lambda k: (order.get(k, len(order)), k))]


def per_class(metrics, class_names):
    """(headers, rows) of precision, recall, F1 and support per class (classes the metrics name)."""
    rows = []
    for name in class_names:
        values = [metrics.get(f"{kind}/{name}") for kind in PER_CLASS]
        if all(v is None for v in values):
            continue
        *scores, support = values
        rows.append([name] + [f"{v:.4f}" if v is not None else "" for v in scores]
                    + [f"{int(support)}" if support is not None else ""])
    return ["class", *PER_CLASS], rows


def text_table(headers, rows, title=None):
    """Columns padded to their widest cell, a dashed rule under the headers, indented by two spaces."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)] if rows else [len(h) for h in headers]
    lines = [title] if title else []
    lines.append("  " + "  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip())
    lines.append("  " + "  ".join("-" * w for w in widths))
    lines += ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def markdown_table(headers, rows):
    escape = lambda cell: str(cell).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, headers)) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    return "\n".join(lines + ["| " + " | ".join(map(escape, row)) + " |" for row in rows])


def metrics_table(metrics, split_name="test"):
    """The overall figures as a two-column table named after the split."""
    rows = [(name, f"{value:.4f}") for name, value in overall(metrics)]
    return text_table(["metric", "value"], rows, title=f"{split_name} metrics")


def per_class_table(metrics, class_names, split_name="test"):
    headers, rows = per_class(metrics, class_names)
    return text_table(headers, rows, title=f"{split_name} metrics per class")
