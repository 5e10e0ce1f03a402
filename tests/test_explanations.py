"""Explanations (issue 29): integrated gradients add up to the probability they explain and name the text's
words; a text run draws them for its mistakes and `tl-app evaluate` draws them again from the export; attention
rollout points a ViT classifier's mistakes at the patches it attends to."""
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


def _attending_vit_classifier():
    """A one-block, one-head ViT classifier (32 px, 8 px patches) whose every token attends to the brightest
    patch: the patch embedding measures a patch's brightness, keys are the normalized tokens, and the query is
    one fixed vector pointing at a bright patch's key."""
    import keras_hub

    from tl_app.image.backbones import get
    from tl_app.image.model import build_image_classifier

    base = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=1,
                                        hidden_dim=4, mlp_dim=8)
    embedding = base.get_layer("vit_patching_and_embedding")
    kernel = np.zeros((8, 8, 3, 4), np.float32)
    kernel[..., 0] = 1.0 / (8 * 8 * 3)  # token = [mean pixel (-1..1 after preprocessing) + 1, 0, 0, 0]
    embedding.patch_embedding.set_weights([kernel, np.array([1.0, 0, 0, 0], np.float32)])
    embedding.position_embedding.set_weights([np.zeros_like(embedding.position_embedding.get_weights()[0])])
    embedding.class_token.assign(np.zeros(embedding.class_token.shape, np.float32))
    mha = base.get_layer("vit_encoder").encoder_layers[0].mha
    bright = np.array([3.0, -1.0, -1.0, -1.0]) / np.sqrt(3.0)  # layer norm of [v, 0, 0, 0] for any v > 0
    weights = [np.zeros_like(w) for w in mha.get_weights()]  # query, key, value, output: kernels and biases
    weights[1][:] = 20 * bright.reshape(1, 4)  # the query, whatever the token
    weights[2][:] = np.eye(4).reshape(4, 1, 4)  # the key, the normalized token itself
    mha.set_weights(weights)
    classifier = build_image_classifier(base, 2, 32, backbone=get("vit_b16"))
    return classifier.model


def test_attention_rollout_points_at_the_patch_a_vit_attends_to_and_is_drawn_for_it():
    import tensorflow as tf

    from tl_app.inspect.attention_rollout import attention_rollout
    from tl_app.inspect.explanations import explain
    from tl_app.inspect.gradcam import grad_cam
    from tl_app.errors import UserError

    model = _attending_vit_classifier()
    images = np.zeros((2, 32, 32, 3), np.float32)
    images[0, 8:16, 16:24] = 255.0  # patch (1, 2)
    images[1, 24:32, 0:8] = 200.0  # patch (3, 0)
    maps = attention_rollout(model, images)
    assert maps.shape == (2, 32, 32)
    for heat, (row, col) in zip(maps, [(1, 2), (3, 0)]):
        patch_means = heat.reshape(4, 8, 4, 8).mean(axis=(1, 3))
        assert np.unravel_index(patch_means.argmax(), (4, 4)) == (row, col)
        others = np.delete(patch_means.ravel(), row * 4 + col)
        assert patch_means[row, col] > 2 * others.max(), patch_means  # bilinear upsampling spreads it a little
    with pytest.raises(UserError, match="no convolutional feature map"):
        grad_cam(model, images, [0, 1])
    # The run's and evaluate's explain step: a ViT's mistakes get the rollout figure, not an error.
    dataset = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1])))
    explanation = explain(model, {"test": dataset}, [("test", 0, 1, "test[0] a\nseen as b")], ["a", "b"])
    assert explanation.figure == "attention_rollout.png" and explanation.png.startswith(b"\x89PNG")
    assert explanation.markdown()[0] == "## Explanations (attention rollout)"
