"""One row of the benchmark table (benchmarks/table.py): a measure, its baseline, the ratio and the goal.

    >>> row("overhead, MLP", 100.0, 98.0, 0.97, "steps/s")["met"]
    True
"""


def row(name, baseline, value, goal, unit, higher_is_better=True, ratio=None, note=""):
    """A table row: `ratio` = value / baseline unless given; `met` compares it with `goal`.

    Args:
        name: what is measured.
        baseline: the figure it is compared with (plain Keras, keras-hub, float32, in-process, ...).
        value: tl_app's figure.
        goal: the ratio the issue that introduced the measure set (None: reported, no goal).
        unit: of `baseline` and `value`.
        higher_is_better: False when the ratio must stay at or under the goal (shares, latencies).
        ratio: for measures whose ratio is not value / baseline (a difference, a share).
        note: settings that matter for reading it (sizes, seed).
    """
    if ratio is None:
        ratio = value / baseline if baseline else float("nan")
    met = None if goal is None else (ratio >= goal if higher_is_better else ratio <= goal)
    sign = ">=" if higher_is_better else "<="
    return {"name": name, "baseline": _round(baseline), "value": _round(value), "ratio": _round(ratio, 3),
            "goal": None if goal is None else f"{sign} {goal:g}", "met": met, "unit": unit, "note": note}


def _round(x, digits=4):
    return round(float(x), digits) if isinstance(x, (int, float)) else x


def print_result(result, out=None):
    """Print a benchmark's result as JSON and, when `out` names a file, write it there too."""
    import json

    print(json.dumps(result, indent=2), flush=True)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
