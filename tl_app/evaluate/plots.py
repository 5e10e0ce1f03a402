"""The figures of an evaluation, as PNG bytes: confusion matrix, reliability diagram, training curves, examples.

matplotlib's object API (a `Figure` rendered by the Agg canvas): no pyplot
figure, no global backend switch, so a notebook that imports tl_app keeps its
own backend. The same bytes go to the run directory, the report and TensorBoard.
"""
import io

import numpy as np

DPI = 100
MAX_LABELED_CLASSES = 30  # above this, the confusion matrix shows colours only (cell counts would not fit)


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def confusion_matrix_png(confusion, class_names, title="confusion matrix"):
    """scikit-learn's ConfusionMatrixDisplay of [C, C] counts (rows true, columns predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(class_names)
    side = min(max(4.5, 0.45 * n + 2.0), 16.0)
    fig = _figure(side, side * 0.9)
    ax = fig.add_subplot()
    labeled = n <= MAX_LABELED_CLASSES
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=list(class_names) if labeled else None).plot(
        ax=ax, include_values=labeled, cmap="Blues", colorbar=True, xticks_rotation="vertical" if n > 8 else "horizontal",
        values_format="d")
    ax.set_title(title)
    return _png(fig)


def reliability_png(edges, counts, accuracy, confidence, ece, title="reliability"):
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, and how many per bin.

    Args: the output of `evaluate.metrics.reliability_bins`, and the expected calibration error.
    """
    fig = _figure(5.0, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    width = np.diff(edges)
    filled = counts > 0
    top.bar(edges[:-1][filled], accuracy[filled], width=width[filled], align="edge", color="#4878d0",
            edgecolor="white", label="accuracy")
    gap_bottom = np.minimum(accuracy, confidence)[filled]
    top.bar(edges[:-1][filled], np.abs(confidence - accuracy)[filled], bottom=gap_bottom, width=width[filled],
            align="edge", color="none", edgecolor="#d62728", hatch="//", linewidth=0.8, label="gap to mean confidence")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfectly calibrated")
    top.set(ylim=(0, 1), ylabel="accuracy", title=f"{title} (ECE {ece:.4f}, {len(edges) - 1} bins)")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(edges[:-1], counts, width=width, align="edge", color="#6c757d", edgecolor="white")
    bottom.set(xlim=(0, 1), xlabel="confidence (top class probability)", ylabel="examples")
    return _png(fig)


def training_curves_png(epochs, phases, title="training"):
    """Loss, accuracy and learning rate per epoch, train and validation, with the phases marked.

    Args:
        epochs: {tag: {epoch: value}} with tags like `train/loss`, `validation/accuracy`, `train/learning_rate`.
        phases: [(first_epoch, name), ...] in order.
    """
    from matplotlib.ticker import MaxNLocator

    fig = _figure(9.0, 3.4)
    axes = fig.subplots(1, 3)
    for ax, (metric, label) in zip(axes, (("loss", "loss"), ("accuracy", "accuracy"),
                                          ("learning_rate", "learning rate"))):
        for split, style in (("train", "-"), ("validation", "--")):
            series = epochs.get(f"{split}/{metric}", {})
            if series:
                steps = sorted(series)
                ax.plot([s + 1 for s in steps], [series[s] for s in steps], style, marker=".", label=split)
        for first, name in phases:
            if first > 0:
                ax.axvline(first + 0.5, color="gray", linewidth=0.8, linestyle=":")
        ax.set(title=label, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric == "learning_rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        elif ax.lines:
            ax.legend(fontsize=8)
    if phases:
        axes[0].annotate("  ".join(f"{first + 1}: {name}" for first, name in phases), (0, 1.12),
                         xycoords="axes fraction", fontsize=8, color="gray")
    fig.suptitle(title)
    return _png(fig)


def is_image_like(example):
    """Whether one raw input can be shown as a picture: [H, W] or [H, W, 1|3] numbers."""
    shape = np.shape(example)
    numeric = np.issubdtype(np.asarray(example).dtype, np.number)
    return numeric and (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3))) and min(shape[:2]) >= 4


def examples_png(images, titles, correct, columns=4):
    """A grid of input images, each titled with its true and predicted class (green right, red wrong)."""
    rows = (len(images) + columns - 1) // columns
    fig = _figure(2.1 * columns, 2.3 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns)).reshape(-1)
    scale = max(1.0, max(float(np.max(image)) for image in images))  # one scale for the grid: 0..255, 0..16 (digits)
    for ax, image, text, right in zip(axes, images, titles, correct):
        image = np.clip(np.asarray(image, np.float32) / scale, 0.0, 1.0)
        ax.imshow(image.squeeze(), cmap="gray" if image.ndim == 2 or image.shape[-1] == 1 else None,
                  interpolation="nearest")
        ax.set_title(text, fontsize=8, color="#1a7f37" if right else "#cf222e")
    for ax in axes:
        ax.axis("off")
    return _png(fig)
