"""Quality gates: conditions on a run's metrics, absolute or relative to the published model.

    accuracy>=0.9,f1_macro>=0.85            absolute thresholds
    accuracy>=published                     no worse than the newest published version
    accuracy>=published-0.005               at most 0.005 worse (TFX Evaluator's change threshold)
    log_loss<=published+0.01, ece<0.05      lower-is-better figures take <= and <
    leaks==0                                a count equal to a value (data inspection, docs/inspect.md)

A condition names any metric the run reports (`accuracy`, `loss`, `f1_macro`,
`recall/<class>`, ...: `evaluate.metrics.metric_names`) with one of `>=`, `>`,
`<=`, `<`. "Published" is the newest version under `<export-dir>/<recipe>/` with
a metrics.json; with none, relative conditions are skipped (and the log and
gate.json say so).

Examples:
    >>> conditions = parse("accuracy>=0.9, f1_macro>=published-0.005")
    >>> [c.text for c in conditions]
    ['accuracy>=0.9', 'f1_macro>=published-0.005']
    >>> decision = decide(conditions, {"accuracy": 0.93, "f1_macro": 0.80}, published=None, spec="demo")
    >>> decision["passed"], [c["result"] for c in decision["conditions"]]
    (True, ['passed', 'skipped: no published version'])
"""
import json
import operator
import os
import re
from dataclasses import dataclass
from typing import Optional

from tl_app import atomic
from tl_app.errors import RunRejected, UserError

GATE_FILE = "gate.json"
OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
_CONDITION = re.compile(r"^(?P<metric>[^<>=]+?)\s*(?P<op>>=|<=|==|>|<)\s*(?P<rhs>.+)$")
_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_RHS = re.compile(rf"^(?:(?P<value>-?{_NUMBER})|published(?:\s*(?P<sign>[-+])\s*(?P<offset>{_NUMBER}))?)$")
EXAMPLE = "accuracy>=0.9,f1_macro>=published-0.005"


class GateFailed(RunRejected):
    """A run that missed its quality gate: one line naming each failed condition with both figures; exit 3."""

    exit_code = 3


@dataclass
class Condition:
    """One gate condition: `metric op threshold`, the threshold absolute or `published` +- an offset."""

    metric: str
    op: str
    value: Optional[float] = None  # absolute threshold, or None when relative
    offset: float = 0.0  # added to the published figure
    text: str = ""

    @property
    def relative(self):
        return self.value is None

    def threshold(self, published_metrics):
        return self.value if not self.relative else published_metrics[self.metric] + self.offset


def parse(spec):
    """The `Condition`s of a `--gate` string; UserError naming the part that is not a condition."""
    if not spec or not spec.strip():
        raise UserError(f"--gate is empty: give conditions such as {EXAMPLE}.")
    conditions = []
    for part in spec.split(","):
        part = part.strip()
        match = _CONDITION.match(part)
        rhs = _RHS.match(match.group("rhs").strip()) if match else None
        if not part or rhs is None:
            raise UserError(f"--gate {spec!r}: {part!r} is not a condition; write METRIC>=VALUE, METRIC>=published or "
                            f"METRIC>=published-0.005 (also >, <=, <), separated by commas, e.g. {EXAMPLE}.")
        metric, op = match.group("metric").strip(), match.group("op")
        if rhs.group("value") is not None:
            conditions.append(Condition(metric, op, value=float(rhs.group("value")), text=f"{metric}{op}{rhs.group(0)}"))
        else:
            offset = float(rhs.group("offset") or 0.0) * (-1.0 if rhs.group("sign") == "-" else 1.0)
            conditions.append(Condition(metric, op, offset=offset, text=f"{metric}{op}{rhs.group(0).replace(' ', '')}"))
    return conditions


def check_names(conditions, available, spec):
    """UserError when a condition names a metric the run does not report (listing those it does)."""
    unknown = [c.metric for c in conditions if c.metric not in available]
    if not unknown:
        return
    overall = [name for name in available if "/" not in name]
    kinds = sorted({name.split("/", 1)[0] for name in available if "/" in name})
    classes = [name.split("/", 1)[1] for name in available if name.startswith(kinds[0] + "/")] if kinds else []
    shown = ", ".join(classes[:8]) + (f" and {len(classes) - 8} more" if len(classes) > 8 else "")
    per_class = f"; per class {', '.join(k + '/<class>' for k in kinds)} with <class> one of {shown}" if kinds else ""
    raise UserError(f"--gate {spec!r}: this run reports no metric {', '.join(repr(u) for u in unknown)}; it reports "
                    f"{', '.join(overall)}{per_class}.")


def published(export_dir, recipe_name):
    """`{"version", "path", "metrics"}` of the newest version under `<export_dir>/<recipe_name>` with a
    metrics.json, or None."""
    from tl_app.export.savedmodel import ASSETS_EXTRA, versions

    model_dir = os.path.join(export_dir, recipe_name)
    for version in reversed(versions(model_dir)):
        path = os.path.join(model_dir, str(version))
        metrics_path = os.path.join(path, ASSETS_EXTRA, "metrics.json")
        if os.path.isfile(metrics_path):
            with open(metrics_path, encoding="utf-8") as f:
                return {"version": version, "path": path, "metrics": json.load(f)}
    return None


def _number(value):
    return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"


def decide(conditions, metrics, published=None, spec=""):
    """The gate's decision on `metrics`: gate.json's content.

    Args:
        conditions: `parse(spec)`.
        metrics: the run's metrics.
        published: `published(...)`'s result, or None.
        spec: the `--gate` string, recorded.
    """
    rows = []
    for c in conditions:
        value = metrics[c.metric]
        row = {"condition": c.text, "metric": c.metric, "op": c.op, "value": value}
        if c.relative and (published is None or c.metric not in published["metrics"]):
            why = "no published version" if published is None else f"version {published['version']} has no {c.metric}"
            row.update(result=f"skipped: {why}", passed=None)
        else:
            threshold = c.threshold(published["metrics"] if c.relative else None)
            against = _number(threshold)
            if c.relative:
                base = published["metrics"][c.metric]
                against = f"published {_number(base)}" + (f" {'+' if c.offset > 0 else '-'} {_number(abs(c.offset))}"
                                                          f" = {_number(threshold)}" if c.offset else "")
            ok = bool(OPERATORS[c.op](value, threshold))
            row.update(threshold=threshold, against=against, result="passed" if ok else "failed", passed=ok)
        rows.append(row)
    return {"spec": spec, "passed": all(r["passed"] is not False for r in rows), "conditions": rows,
            "published": None if published is None else {"version": published["version"], "path": published["path"]}}


def failures(decision):
    """'accuracy 0.8125 < 0.9; f1_macro 0.80 < published 0.8650 - 0.005 = 0.86' for the failed conditions."""
    negated = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}
    parts = []
    for row in decision["conditions"]:
        if row["passed"] is False:
            parts.append(f"{row['metric']} {_number(row['value'])} {negated[row['op']]} {row['against']}")
    return "; ".join(parts)


def write(run_dir, decision):
    atomic.write_json(os.path.join(run_dir, GATE_FILE), decision)
