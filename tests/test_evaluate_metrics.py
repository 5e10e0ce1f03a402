"""Evaluation figures on fixed predictions: each equals scikit-learn's (or Keras'), and the gate decides on them."""
import csv

import numpy as np
import pytest

from tl_app.errors import UserError


def _fixed(n=300, classes=12, seed=3):
    """Predictions that are right about 60% of the time, with uneven confidence, one class never predicted."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(0, 1.0, (n, classes))
    logits[np.arange(n), labels] += rng.uniform(0, 3.0, n)
    logits[:, classes - 1] -= 10.0  # never predicted: its precision is 0 by convention
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probs.astype(np.float32), [f"c{i}" for i in range(classes)]


def test_every_metric_equals_scikit_learns():
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    from tl_app.evaluate.metrics import classification_metrics, confusion_matrix, metric_names, reliability_bins

    labels, probs, names = _fixed()
    predicted = probs.argmax(axis=1)
    m = classification_metrics(labels, probs, names)
    assert set(m) | {"loss"} == set(metric_names(names))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, predicted))
    for average in ("macro", "weighted"):
        assert m[f"precision_{average}"] == pytest.approx(skm.precision_score(labels, predicted, average=average,
                                                                              zero_division=0))
        assert m[f"recall_{average}"] == pytest.approx(skm.recall_score(labels, predicted, average=average,
                                                                        zero_division=0))
        assert m[f"f1_{average}"] == pytest.approx(skm.f1_score(labels, predicted, average=average, zero_division=0))
    per_class_f1 = skm.f1_score(labels, predicted, average=None, labels=range(12), zero_division=0)
    per_class_recall = skm.recall_score(labels, predicted, average=None, labels=range(12), zero_division=0)
    assert [m[f"f1/{n}"] for n in names] == pytest.approx(per_class_f1)
    assert [m[f"recall/{n}"] for n in names] == pytest.approx(per_class_recall)
    assert [m[f"support/{n}"] for n in names] == np.bincount(labels, minlength=12).tolist()
    assert m["precision/c11"] == 0.0 and m["recall/c11"] == 0.0  # never predicted
    assert m["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(labels, probs, k=5, labels=range(12)))
    normalized = probs.astype(np.float64) / probs.astype(np.float64).sum(axis=1, keepdims=True)
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, normalized, labels=range(12)), rel=1e-9)
    assert confusion_matrix(labels, predicted, 12).tolist() == skm.confusion_matrix(labels, predicted,
                                                                                    labels=range(12)).tolist()
    # Calibration: the per-bin figures are calibration_curve's; ECE weights their gaps by the bins' shares.
    correct = (predicted == labels).astype(int)
    confidence = probs.max(axis=1)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=15, strategy="uniform")
    edges, counts, accuracy, mean_confidence = reliability_bins(labels, probs)
    filled = counts > 0
    assert accuracy[filled] == pytest.approx(prob_true) and mean_confidence[filled] == pytest.approx(prob_pred)
    by_hand = sum(abs(correct[(confidence > lo) & (confidence <= hi)].mean() - confidence[(confidence > lo)
                                                                                       & (confidence <= hi)].mean())
                  * np.sum((confidence > lo) & (confidence <= hi)) / len(labels)
                  for lo, hi in zip(edges[:-1], edges[1:]) if np.any((confidence > lo) & (confidence <= hi)))
    assert m["ece"] == pytest.approx(by_hand) and 0.0 < m["ece"] < 1.0


def test_top5_only_above_ten_classes_and_keras_macro_f1_matches():
    from sklearn.metrics import f1_score

    from tl_app.engine.metrics import MacroF1Score, f1_from_confusion, monitor_mode
    from tl_app.evaluate.metrics import classification_metrics, confusion_matrix

    labels, probs, names = _fixed(classes=10)
    assert "top5_accuracy" not in classification_metrics(labels, probs, names)
    predicted = probs.argmax(axis=1)
    metric = MacroF1Score(num_classes=10)
    metric.update_state(labels, probs)
    expected = f1_score(labels, predicted, average="macro", labels=range(10), zero_division=0)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-5)
    # The custom loop's figure: the same metric on summed confusion counts.
    assert f1_from_confusion(confusion_matrix(labels, predicted, 10)) == pytest.approx(expected, abs=1e-5)
    assert (monitor_mode("val_f1_macro"), monitor_mode("val_loss"), monitor_mode("val_auc")) == ("max", "min", "auto")


def test_predictions_csv_and_most_confident_mistakes(tmp_path):
    from tl_app.evaluate.evaluation import evaluate

    from tl_app.evaluate.predictions import Predictions

    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.45, 0.55]], np.float32)
    p = Predictions(np.array([0, 0, 1, 0]), probs, ["cat", "dog"], ["a.png", "b.png", "c.png", "d.png"])
    assert p.mistakes().tolist() == [1, 3]  # wrong, most confident first
    p.write_csv(tmp_path / "predictions.csv")
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    assert [r["input"] for r in rows] == ["a.png", "b.png", "c.png", "d.png"]
    assert rows[1] == {"index": "1", "input": "b.png", "true": "cat", "predicted": "dog", "confidence": "0.700000",
                       "correct": "0"}
    evaluation = evaluate(p, loss=0.5)
    assert list(evaluation.metrics)[:2] == ["accuracy", "loss"] and evaluation.metrics["accuracy"] == 0.5
    assert evaluation.mistakes_markdown().splitlines()[2] == "| 1 | b.png | cat | dog | 0.700 |"
    assert evaluation.confusion.tolist() == [[1, 2], [0, 1]]


def test_gate_parses_decides_and_names_what_failed():
    from tl_app.evaluate import gate

    conditions = gate.parse("accuracy>=0.9, f1_macro>=published-0.005,log_loss<=published")
    metrics = {"accuracy": 0.93, "f1_macro": 0.80, "log_loss": 0.2}
    published = {"version": 3, "path": "saved_models/x/3", "metrics": {"f1_macro": 0.82, "accuracy": 0.9}}
    decision = gate.decide(conditions, metrics, published, "spec")
    assert not decision["passed"]
    assert [c["result"] for c in decision["conditions"]] == ["passed", "failed", "skipped: version 3 has no log_loss"]
    assert gate.failures(decision) == "f1_macro 0.8 < published 0.82 - 0.005 = 0.815"
    assert gate.decide(conditions, {**metrics, "f1_macro": 0.816}, published)["passed"]
    assert gate.decide(conditions, metrics, None)["passed"]  # relative conditions skipped without a published version
    for bad in ("accuracy=0.9", "accuracy>=0.9x", "accuracy>=", ">=0.9", "accuracy>=publishd", "a>=1,,b>=2", " "):
        with pytest.raises(UserError, match="--gate"):
            gate.parse(bad)
    with pytest.raises(UserError, match=r"no metric 'f1'; it reports accuracy, loss.*recall/<class>.*cat, dog"):
        gate.check_names(gate.parse("f1>=0.5"), ["accuracy", "loss", "recall/cat", "recall/dog"], "f1>=0.5")


def test_tables_and_report_show_what_the_metrics_hold():
    from tl_app.evaluate.evaluation import evaluate
    from tl_app.evaluate.predictions import Predictions
    from tl_app.evaluate.report import config_differences, report_markdown

    e = evaluate(Predictions(np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]]), ["cat", "dog"]),
                 loss=0.4)
    table = e.metrics_table().splitlines()
    assert table[0] == "test metrics" and table[3].split() == ["accuracy", "0.6667"] and table[4].split()[0] == "loss"
    assert e.per_class_table().splitlines()[3].split() == ["cat", "0.5000", "1.0000", "0.6667", "1"]
    rows = config_differences({"epochs": 3, "seed": 42, "recipe": "digits"}, {"epochs": 30, "seed": 42})
    assert rows == [("epochs", 3, 30)]
    gate = {"spec": "accuracy>=0.9", "passed": False, "published": None, "rejected": "runs/x/rejected/1",
            "conditions": [{"condition": "accuracy>=0.9", "value": 0.6667, "against": "0.9", "result": "failed"}]}
    text = report_markdown(e, "demo", config_rows=rows, figure_files={"confusion_matrix": "confusion_matrix.png"},
                           gate=gate)
    assert "| epochs | 3 | 30 |" in text and "![confusion matrix](confusion_matrix.png)" in text
    assert "The run **failed**: no version was published." in text and "runs/x/rejected/1" in text
    assert "| 1 | 1 | dog | cat | 0.600 |" in text  # the one mistake


def test_pictures_get_an_examples_grid_and_texts_do_not():
    import tensorflow as tf

    from tl_app.evaluate.evaluation import evaluate, image_examples
    from tl_app.evaluate.predictions import Predictions

    e = evaluate(Predictions(np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]]), ["cat", "dog"]))
    pixels = tf.data.Dataset.from_tensor_slices((np.arange(3 * 64, dtype=np.float32).reshape(3, 8, 8), [0, 1, 1]))
    examples = image_examples(pixels, e)
    assert sorted(examples) == [0, 1, 2] and examples[1][0, 0] == 64.0  # the mistake (1) and the right ones
    png = e.render(examples).figures["examples"]
    assert png.startswith(b"\x89PNG")
    texts = tf.data.Dataset.from_tensor_slices((["a cat", "a dog", "dogs"], [0, 1, 1]))
    assert image_examples(texts, e) is None  # texts: the most confident mistakes as a table instead
    assert "| 1 | 1 | dog | cat | 0.600 |" in e.mistakes_markdown()
