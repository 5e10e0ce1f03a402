"""report.md: one page for people who would rather look than read logs.

Sections, each only when there is something to show: the quality gate's
decision, the config that differs from the recipe's defaults, the metrics and
per-class tables, the training curves across phases, the confusion matrix, the
reliability diagram, example inputs with their predictions, and the most
confident mistakes. Images are the PNG files beside it (relative links), so the
page renders in any Markdown viewer, a code host, or an editor's preview.
"""
import os

from tl_app.evaluate import tables

REPORT = "report.md"
CURVES = "training_curves.png"


def config_differences(values, defaults):
    """[(field, value, default)] of the config fields whose value is not the recipe's default."""
    return [(key, values[key], defaults.get(key)) for key in sorted(values)
            if key in defaults and values[key] != defaults[key]]


def _gate_section(gate):
    verdict = "**passed**" if gate["passed"] else "**failed**: no version was published"
    lines = [f"## Quality gate: {gate['spec']}", "", f"The run {verdict}."]
    published = gate.get("published")
    lines.append(f"Compared with the published version {published['path']}." if published else
                 "No published version to compare with: relative conditions were skipped.")
    rows = [[c["condition"], _figure(c.get("value")), c.get("against", ""), c["result"]] for c in gate["conditions"]]
    lines += ["", tables.markdown_table(["condition", "value", "threshold", "result"], rows)]
    if gate.get("rounds"):
        lines += ["", "Retry rounds:", ""]
        lines += [f"- round {r['round']}: {r['summary']}" for r in gate["rounds"]]
    if gate.get("rejected"):
        lines += ["", f"The model was kept for inspection in `{gate['rejected']}`."]
    return lines


def _figure(value):
    return "" if value is None else f"{value:.4f}"


def report_markdown(evaluation, title, facts=(), config_rows=(), figure_files=None, curves_file=None, gate=None):
    """The report's Markdown.

    Args:
        evaluation: the `Evaluation` (metrics, predictions; figures already written).
        title: the page's heading.
        facts: short lines under the title (recipe, data, epochs, export).
        config_rows: `config_differences(...)`.
        figure_files: {figure name: file name beside the report} (`Evaluation.write`'s result).
        curves_file: the training-curves PNG beside the report, or None.
        gate: the gate's decision (`gate.json`'s content), or None.

    Examples:
        >>> import numpy as np
        >>> from tl_app.evaluate.evaluation import evaluate
        >>> from tl_app.evaluate.predictions import Predictions
        >>> e = evaluate(Predictions(np.array([0, 1]), np.array([[0.8, 0.2], [0.6, 0.4]]), ["cat", "dog"]))
        >>> text = report_markdown(e, "demo")
        >>> text.splitlines()[0], "| accuracy | 0.5000 |" in text
        ('# demo', True)
    """
    figure_files = figure_files or {}
    split = evaluation.split
    lines = [f"# {title}", ""] + [f"- {fact}" for fact in facts] + [""]
    if gate:
        lines += _gate_section(gate) + [""]
    lines += ["## Config (differences from the recipe's defaults)", ""]
    if config_rows:
        lines.append(tables.markdown_table(["field", "value", "default"], [[k, repr(v), repr(d)] for k, v, d in config_rows]))
    else:
        lines.append("All fields at the recipe's defaults.")
    overall = [[name, f"{value:.4f}"] for name, value in tables.overall(evaluation.metrics)]
    lines += ["", f"## Metrics on the {split} split ({len(evaluation.predictions.labels)} examples)", "",
              tables.markdown_table(["metric", "value"], overall),
              "", f"## {getattr(evaluation, 'per_class_heading', 'Per class')}", "",
              evaluation.per_class_markdown()]
    if curves_file:
        lines += ["", "## Training curves", "", f"![training curves]({curves_file})"]
    if "confusion_matrix" in figure_files:
        lines += ["", "## Confusion matrix", "", "Rows: true class; columns: predicted class.", "",
                  f"![confusion matrix]({figure_files['confusion_matrix']})"]
    if "reliability" in figure_files:
        lines += ["", "## Calibration", "", f"Expected calibration error: {evaluation.metrics['ece']:.4f} (15 bins of"
                  " top-class confidence; 0 is perfectly calibrated).", "",
                  f"![reliability diagram]({figure_files['reliability']})"]
    if "pr_curves" in figure_files:
        lines += ["", "## Precision-recall per label", "", "Dots: the per-label thresholds chosen on validation"
                  " (`threshold/<label>` in the table above).", "", f"![precision-recall curves]({figure_files['pr_curves']})"]
    if "examples" in figure_files:
        lines += ["", "## Examples", "", "The most confident mistakes first (red), then correct predictions (green).",
                  "", f"![examples]({figure_files['examples']})"]
    lines += ["", "## Most confident mistakes", "", evaluation.mistakes_markdown(), ""]
    return "\n".join(lines)


def write_report(directory, markdown):
    path = os.path.join(directory, REPORT)
    with open(path, "w", encoding="utf-8") as f:
        f.write(markdown)
    return path
