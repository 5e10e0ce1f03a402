"""Plain-text tables for the end of a run."""


def metrics_table(metrics, split_name="test"):
    """A two-column table of metric name and value, in a stable order (accuracy, loss, the rest)."""
    order = sorted(metrics, key=lambda k: (k not in ("accuracy", "loss"), k != "accuracy", k))
    width = max([len("metric")] + [len(k) for k in order])
    lines = [f"{split_name} metrics", f"  {'metric'.ljust(width)}  value", f"  {'-' * width}  ------"]
    lines += [f"  {name.ljust(width)}  {metrics[name]:.4f}" for name in order]
    return "\n".join(lines)
