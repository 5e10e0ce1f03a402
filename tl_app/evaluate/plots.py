"""The figures of an evaluation, as PNG bytes: confusion matrix, reliability diagram, PR curves per label,
training curves, examples.

matplotlib's object API (a `Figure` rendered by the Agg canvas): no pyplot
figure, no global backend switch, so a notebook that imports tl_app keeps its
own backend. The same bytes go to the run directory, the report and TensorBoard.
They are drawn at the end of every run, so they are kept cheap (measured on the
2-core CPU): margins set by hand (matplotlib's layout engines doubled the cost),
the examples grid as one mosaic image in one Axes (16 Axes cost 3.5 times as
much), and fast PNG compression.
"""
import io

import numpy as np

DPI = 100
MAX_LABELED_CLASSES = 30  # above this, the confusion matrix shows colours only (cell counts would not fit)


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _label_inches(labels, fontsize=10):
    """Room a column of tick labels needs (about 0.55 em per character)."""
    return 0.3 + 0.55 * fontsize / 72 * max((len(str(label)) for label in labels), default=1)


def confusion_matrix_png(confusion, class_names, title="confusion matrix"):
    """scikit-learn's ConfusionMatrixDisplay of [C, C] counts (rows true, columns predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(class_names)
    labeled = n <= MAX_LABELED_CLASSES
    margin = _label_inches(class_names if labeled else [n]) + 0.35  # tick labels + axis label
    side = min(max(4.0, 0.42 * n + 1.5), 14.0)
    width, height = side + margin + 1.0, side + margin + 0.5  # + colour bar and its labels; + title
    fig = _figure(width, height)
    fig.subplots_adjust(left=margin / width, right=1 - 0.5 / width, bottom=margin / height, top=1 - 0.45 / height)
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay(np.asarray(confusion), display_labels=list(class_names) if labeled else None)
    display.plot(ax=ax, include_values=labeled, cmap="Blues", colorbar=False, xticks_rotation="vertical",
                 values_format="d")
    fig.colorbar(display.im_, ax=ax, fraction=0.046, pad=0.03)  # as tall as the square matrix, and thin
    ax.set_title(title)
    return _png(fig)


def reliability_png(edges, counts, accuracy, confidence, ece, title="reliability"):
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, and how many per bin.

    Args: the output of `evaluate.metrics.reliability_bins`, and the expected calibration error.
    """
    fig = _figure(5.0, 5.6)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.09, top=0.94, hspace=0.08)
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


def pr_curves_png(labels, probabilities, thresholds, class_names, title="precision-recall per label"):
    """Multi-label: each label's precision-recall curve (scikit-learn's), its chosen threshold marked as a dot."""
    from sklearn.metrics import precision_recall_curve

    fig = _figure(6.0, 5.0)
    fig.subplots_adjust(left=0.12, right=0.70, bottom=0.11, top=0.93)
    axes = fig.subplots()
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    for j, name in enumerate(class_names):
        if not labels[:, j].any():
            continue  # no positive in the split: no curve
        precision, recall, cuts = precision_recall_curve(labels[:, j], probabilities[:, j])
        line, = axes.plot(recall, precision, linewidth=1.2, label=str(name)[:24])
        at = min(int(np.searchsorted(cuts, thresholds[j])), len(cuts) - 1) if len(cuts) else 0
        axes.plot([recall[at]], [precision[at]], "o", color=line.get_color(), markersize=4)
    axes.set(xlim=(0, 1.01), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return _png(fig)


def training_curves_png(epochs, phases, title="training"):
    """Loss, accuracy and learning rate per epoch, train and validation, with the phases marked.

    Args:
        epochs: {tag: {epoch: value}} with tags like `train/loss`, `validation/accuracy`, `train/learning_rate`.
        phases: [(first_epoch, name), ...] in order.
    """
    from matplotlib.ticker import MaxNLocator

    fig = _figure(10.0, 3.6)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.78, wspace=0.28)
    axes = fig.subplots(1, 3)
    # Multi-label runs log no accuracy: their middle chart is micro F1 at 0.5.
    second = "accuracy" if any(tag.endswith("/accuracy") for tag in epochs) or not any(
        tag.endswith("/f1_micro") for tag in epochs) else "f1_micro"
    for ax, (metric, label) in zip(axes, (("loss", "loss"), (second, second.replace("_", " ")),
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


def examples_png(images, titles, correct, columns=4, tile=160):
    """A grid of input images, each titled with its true and predicted class (green right, red wrong).

    Drawn as one picture at its final size (nearest-neighbour upscaling in numpy, no Axes), with
    the titles as figure text: the images scaled together (0..255 photos and 0..16 digits alike).
    """
    images = [np.asarray(image, np.float32) for image in images]
    scale = max(1.0, max(float(np.max(image)) for image in images))
    rows = (len(images) + columns - 1) // columns
    head, gap = 40, 12  # pixels: room for two lines of title above each tile; between tiles
    cell_h, cell_w = tile + head, tile + gap
    mosaic = np.ones((rows * cell_h, columns * cell_w - gap, 3), np.float32)
    for k, image in enumerate(images):
        image = np.clip(image / scale, 0.0, 1.0)
        image = image.reshape(image.shape[0], image.shape[1], -1)
        image = np.repeat(image[..., :1], 3, -1) if image.shape[-1] == 1 else image[..., :3]
        rows_at = np.arange(tile) * image.shape[0] // tile  # nearest neighbour to tile x tile
        cols_at = np.arange(tile) * image.shape[1] // tile
        r, c = divmod(k, columns)
        mosaic[r * cell_h + head: (r + 1) * cell_h, c * cell_w: c * cell_w + tile] = image[rows_at][:, cols_at]
    height, width = mosaic.shape[:2]
    fig = _figure(width / DPI, height / DPI)
    fig.figimage(mosaic, 0, 0, origin="upper")
    for k, (text, right) in enumerate(zip(titles, correct)):
        r, c = divmod(k, columns)
        fig.text((c * cell_w + tile / 2) / width, 1 - (r * cell_h + head / 2) / height, text, ha="center",
                 va="center", fontsize=8, color="#1a7f37" if right else "#cf222e")
    return _png(fig)


def highlighted_texts_png(items, width=960, fontsize=9, max_words=120):
    """Texts with each word's background coloured by its score: red for evidence for the class, blue
    against, stronger the larger (scaled per text to its largest |score|).

    Args:
        items: `[(title, words, scores)]`, e.g. token attributions (`inspect.token_attributions`).
        width: of the picture, in pixels.
        fontsize: of the words; monospace, so the layout needs no text measuring.
        max_words: shown of each text (the rest elided).
    """
    char = 0.602 * fontsize * DPI / 72  # DejaVu Sans Mono's advance, in pixels
    line, margin, space = 1.9 * fontsize * DPI / 72, 8, 1.6 * char  # a wider space: the boxes must not touch
    layouts, height = [], margin
    for title, words, scores in items:
        placed, row, x = [], 0, 0.0
        for word in list(words)[:max_words] + (["..."] if len(words) > max_words else []):
            if x and x + len(word) * char > width - 2 * margin:
                row, x = row + 1, 0.0
            placed.append((row, x, word))
            x += len(word) * char + space
        layouts.append((title, placed, np.asarray(scores, np.float64)[:max_words], height))
        height += (row + 2) * line + margin * 2
    fig = _figure(width / DPI, height / DPI)
    for title, placed, scores, top in layouts:
        fig.text(margin / width, 1 - (top + line / 2) / height, title, fontsize=fontsize, fontweight="bold",
                 va="center")
        peak = max(float(np.max(np.abs(scores))) if len(scores) else 0.0, 1e-12)
        for k, (row, x, word) in enumerate(placed):
            strength = float(scores[k]) / peak if k < len(scores) else 0.0
            colour = (0.84, 0.15, 0.16, abs(strength)) if strength > 0 else (0.12, 0.47, 0.71, abs(strength))
            fig.text((margin + x) / width, 1 - (top + (row + 1.5) * line) / height, word, family="monospace",
                     fontsize=fontsize, va="center", bbox=dict(facecolor=colour, edgecolor="none", pad=1.0))
    return _png(fig)
