"""label_mode=multi_label: label sets from CSV files, per-label thresholds, sigmoid exports, bad input."""
import json

import numpy as np
import pytest

from helpers import assert_one_line_error
from text_helpers import write_label_set_csv, write_text_folder, write_tiny_bert_preset

MULTI = ["--set", "label_mode=multi_label", "--set", "label_column=labels"]
FAST = ["--set", "sequence_length=16", "--set", "pooling=mean", "--set", "batch_size=8", "--set", "learning_rate=0.02"]


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    return write_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert"))


def test_thresholds_maximize_each_labels_f1_on_validation_with_a_floor():
    from tl_app.evaluate.thresholds import best_f1_threshold, best_f1_thresholds

    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1]])
    probabilities = np.array([[0.9, 0.30, 0.02], [0.6, 0.45, 0.03], [0.55, 0.40, 0.01],
                              [0.1, 0.35, 0.04], [0.7, 0.05, 0.05]])
    thresholds = best_f1_thresholds(labels, probabilities, floor=0.1)  # step 1 of choose_thresholds
    # label 0: above 0.55 (the negative at 0.55 excluded) -> F1 1.0; cut midway to the next probability.
    assert thresholds[0] == pytest.approx((0.6 + 0.55) / 2)
    # label 1: positives at 0.45 and 0.40, a negative at 0.35 -> cut between 0.40 and 0.35.
    assert thresholds[1] == pytest.approx(0.375)
    # label 2: its best cut (0.045) is under the floor: the floor, so a rare label is not on for everything.
    assert thresholds[2] == pytest.approx(0.1)
    assert best_f1_threshold(np.zeros(4), np.full(4, 0.9), floor=0.1)[0] == 0.5  # no positive: no evidence


def test_a_cut_resting_on_one_validation_example_is_shrunk_toward_the_shared_cut():
    from tl_app.evaluate.thresholds import best_f1_thresholds, choose_thresholds, shared_threshold

    # 20 validation rows, 3 labels. Labels a and b: positives 0.55-0.95, negatives up to 0.45: their best cuts
    # (~0.5) barely move when the rows are resampled. Label c: four positives at 0.8-0.95 and one at 0.15, every
    # negative at most 0.1: its best cut (0.125) sits under that one example; without it the cut would be ~0.45.
    n = 20
    probabilities = np.tile(np.linspace(0.02, 0.45, n)[:, None], (1, 3))
    labels = np.zeros((n, 3), int)
    for j, positives in enumerate(([0.9, 0.8, 0.7, 0.65, 0.6, 0.55], [0.95, 0.85, 0.75, 0.7, 0.62, 0.58],
                                   [0.95, 0.9, 0.85, 0.8, 0.15])):
        rows = np.arange(len(positives)) * 3 + j
        probabilities[rows, j], labels[rows, j] = positives, 1
    negatives_c = labels[:, 2] == 0
    probabilities[negatives_c, 2] = np.linspace(0.01, 0.1, negatives_c.sum())

    own = best_f1_thresholds(labels, probabilities, floor=0.1)
    assert own.tolist() == pytest.approx([0.5, (0.58 + 0.45) / 2, (0.15 + 0.1) / 2])
    chosen = choose_thresholds(labels, probabilities, floor=0.1)
    assert chosen.tolist() == choose_thresholds(labels, probabilities, floor=0.1).tolist()  # seeded bootstrap
    assert chosen[:2] == pytest.approx(own[:2], abs=0.01)  # well-determined cuts are kept
    shared = shared_threshold(labels, probabilities, floor=0.1)
    assert own[2] + 0.1 < chosen[2] < shared  # the fragile one is pulled toward the shared cut
    assert choose_thresholds(labels, probabilities, floor=0.1, resamples=0).tolist() == own.tolist()
    assert choose_thresholds(labels[:, :1], probabilities[:, :1], floor=0.1).tolist() == own[:1].tolist()


def test_label_sets_from_a_column_or_zero_one_columns(tmp_path):
    from tl_app.data.label_sets import positive_weights
    from tl_app.text.files import csv_label_set_texts
    from tl_app.recipes.text_csv import TextCsvConfig

    path = tmp_path / "tickets.csv"
    rows = ["text,labels,urgent,billing"] + [f"ticket {i},{['urgent', 'billing;urgent', 'billing'][i % 3]},"
                                              f"{int(i % 3 < 2)},{int(i % 3 > 0)}" for i in range(30)]
    path.write_text("\n".join(rows + ["no label here,,0,0"]) + "\n")
    cfg = TextCsvConfig(label_mode="multi_label", label_column="labels", validation_fraction=0.2, test_fraction=0.2)
    raw = csv_label_set_texts(str(path), cfg)
    assert raw.class_names == ["billing", "urgent"]
    assert sum(len(t) for t, _ in raw.splits.values()) == 30 and any("skipped 1 row(s) with no label" in n for n in raw.notes)
    by_columns = csv_label_set_texts(str(path), TextCsvConfig(
        label_mode="multi_label", label_columns="urgent,billing", allow_empty_labels=True, validation_fraction=0.2,
        test_fraction=0.2))
    assert by_columns.class_names == ["urgent", "billing"] and sum(len(t) for t, _ in by_columns.splits.values()) == 31
    texts, labels = raw.splits["train"]
    expected = {0: [0, 1], 1: [1, 1], 2: [1, 0]}
    assert all(labels[k].tolist() == expected[int(t.split()[1]) % 3] for k, t in enumerate(texts))
    weights = positive_weights(labels, 2.0, balanced=True)
    share = labels.mean(axis=0)
    assert weights == pytest.approx(2.0 * (1 - share) / share, rel=1e-5)


def test_text_csv_multi_label_run_exports_thresholded_predictions(workdir, cli, tiny_preset):
    data = write_label_set_csv(workdir / "reviews.csv", n=90)
    result = cli("run", "text_csv", "--data-dir", data, "--set", f"preset={tiny_preset}", *MULTI, *FAST,
                 "--set", "epochs=25", "--set", "fine_tune_epochs=0", "--set", "label_smoothing=0.05",
                 "--set", "class_weight=auto", "--gate", "map>=0.5", "--no-serving-check")
    assert result.exit_code == 0, result.output
    assert "per-label thresholds (best F1 on 9 validation examples, shrunk toward the shared cut" in result.output
    (run,) = (workdir / "runs" / "text_csv").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["map"] >= 0.8 and metrics["f1_micro"] >= 0.6  # a 2-layer random BERT, 25 head epochs
    assert {"subset_accuracy", "hamming_loss", "f1_macro", "threshold/praise", "ap/aside"} <= set(metrics)
    header = (run / "predictions.csv").read_text().splitlines()[0]
    assert header == "index,input,true,predicted,exact,p/aside,p/complaint,p/praise"
    assert (run / "pr_curves.png").is_file() and "## Per label" in (run / "report.md").read_text()

    export = workdir / "saved_models" / "text_csv" / "1"
    extra = export / "assets.extra"
    assert extra.joinpath("labels.txt").read_text().split() == ["aside", "complaint", "praise"]
    thresholds = json.loads(extra.joinpath("thresholds.json").read_text())["thresholds"]
    assert thresholds == [metrics[f"threshold/{n}"] for n in ("aside", "complaint", "praise")]
    # The export's serving_default, through tl-app predict: `predicted` (the label set) is its probabilities
    # at the saved thresholds, applied in the graph.
    texts = [line.split(",")[0] for line in open(data).read().splitlines()[1:31]]
    shown = cli("predict", str(export), "--json", "--top-k", "3", *texts)
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output[shown.output.index("["):])
    cut = dict(zip(["aside", "complaint", "praise"], np.float32(thresholds)))
    for row in rows:
        assert row["labels"] == [t["class"] for t in sorted(row["top_k"], key=lambda t: t["class_id"])
                                 if np.float32(t["probability"]) >= cut[t["class"]]]
    assert 0 < sum(len(row["labels"]) for row in rows) < 3 * len(rows)
    from tl_app.serve.predict import format_rows

    assert format_rows(rows[:1]).split("  ")[1].strip() == "{" + ", ".join(rows[0]["labels"]) + "}"


def test_multi_label_on_a_folder_recipe(workdir, cli, tiny_preset, tmp_path):
    tree = write_text_folder(tmp_path / "texts", n_per_class=5)
    assert_one_line_error(cli("run", "text_folder", "--data-dir", tree, "--set", f"preset={tiny_preset}",
                              "--set", "label_mode=multi_label"), "one label per example", "text_csv")


def test_a_separator_that_never_occurs_suggests_the_one_used(workdir, cli, tiny_preset):
    data = write_label_set_csv(workdir / "reviews.csv", n=30, separator="|")
    assert_one_line_error(cli("run", "text_csv", "--data-dir", data, "--set", f"preset={tiny_preset}", *MULTI),
                          "no label cell holds the separator ';'", "label_separator='|'")


def test_a_label_only_in_test_is_refused(workdir, cli, tiny_preset):
    from tl_app.data.splits import seeded_split

    data = workdir / "reviews.csv"
    header, *rows = open(write_label_set_csv(data, n=30)).read().splitlines()
    at = int(seeded_split(31, (0.1, 0.2), 42)[2][0])  # a row the seeded split puts in test
    rows.insert(at, "a rare text,praise;rare")
    data.write_text("\n".join([header, *rows]) + "\n")
    assert_one_line_error(cli("run", "text_csv", "--data-dir", str(data), "--set", f"preset={tiny_preset}", *MULTI),
                          "label(s) 'rare' occur only in the test split")


def test_a_gate_on_a_single_label_metric(workdir, cli, tiny_preset):
    data = write_label_set_csv(workdir / "reviews.csv", n=30)
    assert_one_line_error(cli("run", "text_csv", "--data-dir", data, "--set", f"preset={tiny_preset}", *MULTI,
                              "--gate", "accuracy>=0.9"), "accuracy is a single-label metric", "f1_micro")


def write_label_set_images(root, n=36, seed=0):
    """labels.csv (`path,labels`, paths relative to it) of 32 px PNGs: top half one colour, bottom half the other."""
    import csv
    import os

    from PIL import Image

    colors = {"blue": (40, 40, 200), "green": (40, 190, 40), "red": (200, 40, 40)}
    rng = np.random.default_rng(seed)
    names = sorted(colors)
    os.makedirs(os.path.join(root, "images"))
    with open(os.path.join(root, "labels.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "labels"])
        for i in range(n):
            chosen = [names[i % 3]] + ([names[(i + 1) % 3]] if i % 2 else [])
            image = rng.integers(0, 30, (32, 32, 3)).astype(np.uint8)
            image[:16] += np.array(colors[chosen[0]], np.uint8)
            image[16:] += np.array(colors[chosen[-1]], np.uint8)
            Image.fromarray(image).save(os.path.join(root, "images", f"{i:03d}.png"))
            writer.writerow([f"images/{i:03d}.png", ";".join(chosen)])
    return os.path.join(root, "labels.csv")


def test_image_csv_multi_label_run(workdir, cli):
    """The image family's sigmoid head through a run (the export's thresholded signature is the text test's)."""
    data = write_label_set_images(str(workdir / "colors"))
    result = cli("run", "image_csv", "--data-dir", data, "--set", "label_mode=multi_label", "--set", "alpha=0.35",
                 "--set", "image_size=32", "--set", "weights=none", "--set", "epochs=2", "--set", "fine_tune_epochs=0",
                 "--set", "positive_weight=2", "--set", "fixed_threshold=0.5", "--no-export")
    assert result.exit_code == 0, result.output
    assert "3 labels, 1.50 per row on average (blue 18, green 18, red 18)" in result.output
    (run,) = (workdir / "runs" / "image_csv").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"map", "f1_micro", "threshold/red", "support/blue"} <= set(metrics) and "accuracy" not in metrics
    thresholds = json.loads((run / "thresholds.json").read_text())
    assert thresholds["labels"] == ["blue", "green", "red"] and thresholds["thresholds"] == [0.5, 0.5, 0.5]
    assert metrics["f1_micro"] == metrics["f1_micro_at_0.5"]
    assert (run / "predictions.csv").read_text().splitlines()[0].startswith("index,input,true,predicted,exact")


def test_multi_label_on_image_folder(workdir, cli, tmp_path):
    assert_one_line_error(cli("run", "image_folder", "--data-dir", str(tmp_path), "--set", "label_mode=multi_label"),
                          "image_folder reads one label per example", "image_csv")


@pytest.mark.parametrize("name", ["tl_app.data.label_sets", "tl_app.evaluate.thresholds", "tl_app.evaluate.multi_label"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
