"""Explanations of texts (issue 29): integrated gradients add up to the probability they explain and name the
text's words; a text run draws them for its mistakes and `tl-app evaluate` draws them again from the export."""
import json

import numpy as np
import pytest

from test_evaluate_run import _cli
from text_helpers import sentiment_texts, write_text_folder, write_tiny_bert_preset


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    return write_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert"))


def test_integrated_gradients_add_up_to_the_probability_change(tiny_preset):
    import keras_hub

    from tl_app.evaluate.plots import highlighted_texts_png
    from tl_app.inspect.token_attributions import integrated_gradients
    from tl_app.text.model import build_text_classifier

    backbone = keras_hub.models.Backbone.from_preset(tiny_preset)
    classifier = build_text_classifier(backbone, keras_hub.models.Tokenizer.from_preset(tiny_preset), 2, 16)
    texts, _ = sentiment_texts(3)
    probabilities = classifier.model(np.array(texts)).numpy()
    for cls in (0, 1):
        attributions = integrated_gradients(classifier.model, texts, [cls] * len(texts))
        for text, a, p in zip(texts, attributions, probabilities[:, cls]):
            assert a.words == text.split()[:14]  # the test vocabulary's words are whole tokens; 16 - [CLS], [SEP]
            assert a.probability == pytest.approx(float(p), abs=1e-5)
            # Completeness: the words' shares add up to p(text) - p(all padding), up to the integration's error.
            assert abs(a.gap) < 0.02 * abs(a.probability - a.baseline_probability) + 1e-4
            assert np.abs(a.scores).max() > 0
    small = highlighted_texts_png([("one", a.words, a.scores) for a in attributions[:1]])
    tall = highlighted_texts_png([(str(k), a.words, a.scores) for k, a in enumerate(attributions)])
    assert small.startswith(b"\x89PNG") and len(tall) > len(small)


def test_a_text_run_and_evaluate_draw_token_attributions_of_its_mistakes(tiny_preset, tmp_path):
    data = write_text_folder(tmp_path / "texts", n_per_class=24)
    # One head epoch of a random tiny BERT: the test split has mistakes to explain.
    result = _cli("run", "text_folder", "--data-dir", data, "--set", f"preset={tiny_preset}", "--set", "sequence_length=16",
                  "--set", "batch_size=8", "--set", "epochs=1", "--set", "fine_tune_epochs=0", "--set", "seed=1",
                  "--no-serving-check", "--run-id", "r", "--logdir", tmp_path / "runs",
                  "--export-dir", tmp_path / "saved_models")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "text_folder" / "r"
    assert json.loads((run / "metrics.json").read_text())["accuracy"] < 1.0
    report = (run / "report.md").read_text()
    assert (run / "token_attributions.png").is_file() and "## Explanations (token attributions)" in report
    listed = [line for line in report.splitlines() if line.startswith("- test[") and "seen as" in line]
    assert listed and all("**" in line or "no word counts" in line for line in listed)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "test"))
    events.Reload()
    assert "token_attributions" in events.Tags()["tensors"]  # the TensorBoard image beside the report's
    out = tmp_path / "eval"
    evaluated = _cli("evaluate", tmp_path / "saved_models" / "text_folder", "--output-dir", out)
    assert evaluated.exit_code == 0, evaluated.output
    # The export's weights in the recipe's model: the same mistakes, explained the same way.
    again = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("- test[")]
    assert (out / "token_attributions.png").is_file() and again[:len(listed)] == listed
