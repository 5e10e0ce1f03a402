"""BERT text recipes end to end with a tiny BERT: sst2, text_folder, text_csv, both phases, string exports."""
import json
import os
import time

import numpy as np
import pytest

from helpers import assert_one_line_error, model_with_hidden_head, run_python
from text_helpers import write_text_csv, write_text_folder, write_tiny_bert_preset

SEQ = "sequence_length=16"
# Tiny random BERTs learn with higher rates than BERT's 2e-5.
FAST = ["--set", SEQ, "--set", "pooling=mean", "--set", "batch_size=8", "--set", "learning_rate=0.01",
        "--set", "fine_tune_learning_rate=0.001"]

# A fresh process in which Keras and keras-hub cannot be imported at all: TensorFlow imports
# without them, and TF-Text's kernels come from its op libraries. (`import tensorflow_text`
# 2.21 itself imports Keras for its Keras layers; TF Serving needs only the kernels.)
NO_KERAS_TF_TEXT_PRELUDE = """
import glob, importlib.util, os, sys
BLOCKED = ("keras", "keras_hub", "keras_nlp", "tf_keras")
for name in BLOCKED:
    sys.modules[name] = None  # `import keras` now fails: nothing can load it
import tensorflow as tf
ops_dir = os.path.join(os.path.dirname(importlib.util.find_spec("tensorflow_text").origin), "python", "ops")
for library in sorted(glob.glob(os.path.join(ops_dir, "*.so"))):
    tf.load_op_library(library)
"""


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    return write_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="module")
def text_tree(tmp_path_factory):
    return write_text_folder(tmp_path_factory.mktemp("texts"), n_per_class=40)


def _metrics(workdir, recipe):
    (run,) = (workdir / "runs" / recipe).iterdir()
    return json.loads((run / "metrics.json").read_text())


def test_text_folder_both_phases_and_servable_export(workdir, cli, tiny_preset, text_tree):
    from tl_app.export.servable_ops import saved_model_ops, unservable_ops

    result = cli("run", "text_folder", "--data-dir", text_tree, "--set", f"preset={tiny_preset}", *FAST,
                 "--set", "epochs=20", "--set", "fine_tune_epochs=2")
    assert result.exit_code == 0, result.output
    assert "phase 'head': training the head on 56 cached feature vectors" in result.output
    assert "phase 'fine_tune': 2 epoch(s) at learning rate 0.001" in result.output
    assert "train: 0 of 56 texts (0.0%) truncated to 14 WordPiece tokens" in result.output
    assert _metrics(workdir, "text_folder")["accuracy"] >= 0.75
    export_dir = str(workdir / "saved_models" / "text_folder" / "1")
    ops = saved_model_ops(export_dir)
    assert {"FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"} <= ops  # tokenization is in the graph
    assert unservable_ops(export_dir) == []  # no TFText>RoundRobinTrim, no py_function
    assert not any("PyFunc" in op for op in ops)


def test_a_later_run_reuses_kept_text_features_until_the_packing_changes(workdir, cli, tiny_preset, text_tree):
    args = ["run", "text_folder", "--data-dir", text_tree, "--set", f"preset={tiny_preset}", *FAST,
            "--set", "epochs=2", "--set", "fine_tune_epochs=0", "--no-export"]
    first, later = cli(*args), cli(*args)
    assert first.exit_code == 0 and later.exit_code == 0, first.output + later.output
    assert "train: kept 56 feature vectors" in first.output
    assert "train: reused 56 feature vectors" in later.output and "validation: reused" in later.output
    longer = cli(*args, "--set", "sequence_length=20")  # other token ids, other features: a new key
    assert longer.exit_code == 0 and "train: kept 56 feature vectors" in longer.output, longer.output


def test_export_serves_raw_strings_in_a_process_without_keras(tmp_path, tiny_preset, text_tree):
    """Exported probabilities equal the Keras model's, for ordinary, empty, long and non-UTF-8 inputs."""
    import keras
    import tensorflow as tf

    from tl_app import registry
    from tl_app.export import savedmodel as export
    from tl_app.engine.trainer import Trainer

    recipe = registry.get("text_folder")(None)
    cfg = recipe.config
    cfg.data_dir, cfg.preset, cfg.sequence_length, cfg.pooling = text_tree, tiny_preset, 16, "cls"
    cfg.epochs, cfg.fine_tune_epochs, cfg.batch_size = 3, 0, 8
    keras.utils.set_random_seed(0)
    data = recipe.load_data()
    model = recipe.build_model(data)
    Trainer(recipe, data, model, callbacks=[]).run_all()
    path = export.export_model(model, recipe.serving_signatures(model, data.class_names),
                               str(tmp_path / "text_folder"), data.class_names, {"recipe": "text_folder"}, {})
    texts = [b"the movie was good .", b"", b"bad " * 500, b"awful \xff\xfe film"]
    expected = model.predict(tf.constant(texts), verbose=0)
    code = NO_KERAS_TF_TEXT_PRELUDE + f"""
import json
loaded = tf.saved_model.load({path!r})
fn = loaded.signatures["serving_default"]
out = fn(text=tf.constant({texts!r}))
for name in BLOCKED:
    del sys.modules[name]
assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED], "keras was imported"
print(json.dumps({{"probabilities": out["probabilities"].numpy().tolist(),
                  "class_id": out["class_id"].numpy().tolist(),
                  "class_name": [s.decode() for s in out["class_name"].numpy()],
                  "keras_loaded": "keras" in sys.modules}}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["keras_loaded"] is False
    np.testing.assert_allclose(np.array(out["probabilities"]), expected, rtol=1e-4, atol=1e-5)
    assert out["class_name"] == [data.class_names[i] for i in expected.argmax(-1)]
    sig = tf.saved_model.load(path).signatures["serving_default"]
    (name, spec), = sig.structured_input_signature[1].items()
    assert name == "text" and spec.dtype == tf.string and spec.shape.as_list() == [None]


def test_text_csv_tsv_by_extension_head_phase_with_augmentation(workdir, cli, tiny_preset, tmp_path):
    data = write_text_csv(tmp_path / "reviews.tsv", n=60, delimiter="\t")
    synonyms = tmp_path / "synonyms.json"
    synonyms.write_text(json.dumps({"good": ["fine"], "movie": ["film"]}))
    result = cli("run", "text_csv", "--data-dir", data, "--set", f"preset={tiny_preset}", *FAST,
                 "--set", "text_column=review", "--set", "label_column=sentiment", "--set", "epochs=2",
                 "--set", "fine_tune_epochs=0", "--set", "augment=true", "--set", f"synonyms={synonyms}")
    assert result.exit_code == 0, result.output
    assert "delimiter '\\t'" in result.output
    assert "encoder runs on augmented texts every epoch" in result.output  # augmentation turns the cache off
    (run,) = (workdir / "runs" / "text_csv").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["augment"] is True
    labels = (workdir / "saved_models" / "text_csv" / "1" / "assets.extra" / "labels.txt").read_text().split()
    assert labels == ["neg", "pos"]  # label names from the data


def test_sst2_through_tfds_mock_reports_on_validation(workdir, cli, tfds_mock, tiny_preset):
    with tfds_mock(num_examples=48):
        result = cli("run", "sst2", "--set", f"preset={tiny_preset}", *FAST, "--set", "epochs=2",
                     "--set", "fine_tune_epochs=1", "--no-export")
    assert result.exit_code == 0, result.output
    assert "reporting on its validation split" in result.output
    assert "phase 'fine_tune': 1 epoch(s)" in result.output
    assert "validation metrics" in result.output  # the table names the split it reports on
    assert set(_metrics(workdir, "sst2")) >= {"accuracy", "loss"}


def test_hidden_units_adds_a_hidden_layer_that_trains_exports_and_serves(workdir, cli, tiny_preset, text_tree):
    """`hidden_units=16`: Dense(16, relu) between the pooled features and the dropout, in the full model and in
    the feature cache's head (shared), trained in both phases, exported and served from strings and token ids;
    an `--init-from` run without it and a negative width are one-line errors."""
    import tensorflow as tf

    from tl_app.text.serving import TOKEN_IDS_SIGNATURE

    args = ["run", "text_folder", "--data-dir", text_tree, "--set", f"preset={tiny_preset}", *FAST,
            "--set", "epochs=10", "--set", "inspect_data=false"]
    result = cli(*args, "--set", "fine_tune_epochs=1", "--set", "hidden_units=16")
    assert result.exit_code == 0, result.output
    assert "phase 'head': training the head on 56 cached feature vectors" in result.output
    assert _metrics(workdir, "text_folder")["accuracy"] >= 0.75
    path = str(workdir / "saved_models" / "text_folder" / "1")
    model = model_with_hidden_head(registry_recipe("text_folder", data_dir=text_tree, preset=tiny_preset,
                                                   sequence_length=16, pooling="mean", hidden_units=16), path, 16)
    texts = tf.constant(["the movie was good .", "an awful , boring film"])
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](text=texts)
    np.testing.assert_allclose(out["probabilities"].numpy(), model.predict(texts, verbose=0), rtol=1e-4, atol=1e-5)
    assert TOKEN_IDS_SIGNATURE in loaded.signatures
    assert_one_line_error(cli(*args, "--init-from", path, "--no-export"), "hidden_units=16", "hidden_units=0")
    assert_one_line_error(cli(*args, "--set", "hidden_units=-2"), "hidden_units=-2", "0 or more")


def registry_recipe(name, **values):
    """The registered recipe `name` with its defaults and `values` set (typed, as from Python)."""
    from tl_app import config as config_lib
    from tl_app import registry

    cls = registry.get(name)
    return cls(config_lib.apply_values(cls.default_config(), values, name))


# ---- bad input: one line, no traceback ---------------------------------------------------
def _one_error_line(result):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_class_folder_without_text_files(workdir, cli, tiny_preset, tmp_path):
    root = write_text_folder(tmp_path / "t", n_per_class=5)
    empty = tmp_path / "t" / "neutral"
    empty.mkdir()
    (empty / "notes.md").write_text("not a .txt file")
    line = _one_error_line(cli("run", "text_folder", "--data-dir", root, "--set", f"preset={tiny_preset}"))
    assert "neutral has no text files" in line


def test_csv_without_the_named_columns_lists_its_columns(workdir, cli, tiny_preset, tmp_path):
    data = write_text_csv(tmp_path / "d.csv", n=20)
    line = _one_error_line(cli("run", "text_csv", "--data-dir", data, "--set", f"preset={tiny_preset}"))
    assert "no column(s) 'text', 'label'" in line and "'id', 'review', 'sentiment'" in line


def test_label_column_with_one_class(workdir, cli, tiny_preset, tmp_path):
    data = tmp_path / "one.csv"
    data.write_text("text,label\n" + "".join(f"good movie {i},pos\n" for i in range(10)))
    line = _one_error_line(cli("run", "text_csv", "--data-dir", str(data), "--set", f"preset={tiny_preset}"))
    assert "column 'label' has only 'pos'" in line


def test_empty_non_utf8_and_long_texts_are_counted(tiny_preset, tmp_path):
    from tl_app import registry

    train = tmp_path / "t" / "train"
    write_text_folder(train, n_per_class=10)
    write_text_folder(tmp_path / "t" / "test", n_per_class=3)
    write_text_folder(tmp_path / "t" / "validation", n_per_class=2)
    (train / "positive" / "empty.txt").write_text("   \n")
    (train / "negative" / "latin1.txt").write_bytes("awful caf\xe9 film".encode("latin-1"))
    (train / "negative" / "long.txt").write_text("bad " * 5000)
    recipe = registry.get("text_folder")(None)
    cfg = recipe.config
    cfg.data_dir, cfg.preset, cfg.sequence_length = str(tmp_path / "t"), tiny_preset, 16
    data = recipe.load_data()
    notes = "\n".join(data.notes)
    assert "text files: train/test folders; 33 files" in notes
    assert "1 file(s) not valid UTF-8, decoded with replacement characters" in notes
    assert "train: dropped 1 empty text(s)" in notes
    assert "train: 1 of 22 texts (4.5%) truncated to 14 WordPiece tokens" in notes
    assert "most are cut" not in notes  # a few long texts: no advice
    from tl_app.text.packing import truncation_note

    long = ["bad film " * 40] * 3 + ["good"]
    assert truncation_note(recipe._tokenizer, long, 16, "train", advise=True).endswith(
        "; most are cut: a longer sequence_length (up to the encoder's positions) reads more of each, and fine-tuning"
        " takes about proportionally longer")
    assert "most are cut" not in truncation_note(recipe._tokenizer, long, 16, "test")
    texts = [t.numpy().decode() for t, _ in data.train]
    assert any("caf\ufffd" in t for t in texts)


def test_preset_name_offline_fails_fast_naming_the_alternatives(workdir, cli, text_tree):
    started = time.time()
    line = _one_error_line(cli("run", "text_folder", "--data-dir", text_tree, "--set", "preset=bert_tiny_en_uncased"))
    assert time.time() - started < 15
    assert "preset=offline" in line and "directory" in line and "cannot be reached" in line


@pytest.mark.parametrize("preset, message", [
    ("no/such/dir", "no such directory"),
    ("gpt2_base_en", "not a keras-hub BERT preset"),
])
def test_bad_preset_values(workdir, cli, text_tree, preset, message):
    assert message in _one_error_line(cli("run", "text_folder", "--data-dir", text_tree, "--set", f"preset={preset}"))


def test_hugging_face_directory_of_another_model_is_refused(workdir, cli, text_tree, tmp_path):
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    line = _one_error_line(cli("run", "text_folder", "--data-dir", text_tree, "--set", f"preset={tmp_path / 'gpt'}"))
    assert "'gpt2' model, not BERT" in line


def test_offline_preset_without_the_asset_says_how_to_prepare_it(workdir, cli, text_tree, monkeypatch):
    from tl_app.text import presets as bert_presets

    monkeypatch.setattr(bert_presets, "minilm_directory", lambda: None)
    line = _one_error_line(cli("run", "text_folder", "--data-dir", text_tree, "--set", "preset=offline"))
    assert "tl-app assets minilm" in line


# ---- the real encoder -------------------------------------------------------------------
@pytest.mark.real_assets
def test_offline_minilm_encoder_learns_with_mean_pooling_and_exports_servably(workdir, cli, text_tree):
    from tl_app import assets
    from tl_app.export.servable_ops import saved_model_ops, unservable_ops

    path = assets.prepare("minilm")
    assert os.path.isfile(os.path.join(path, "model.safetensors"))
    result = cli("run", "text_folder", "--data-dir", text_tree, "--set", "preset=offline", "--set", "sequence_length=24",
                 "--set", "fine_tune_epochs=0")
    assert result.exit_code == 0, result.output
    assert "all-MiniLM-L6-v2" in result.output and "pooling mean" in result.output
    assert "22,713,216 parameters" in result.output  # the real encoder, not a random stand-in
    assert _metrics(workdir, "text_folder")["accuracy"] >= 0.9
    export_dir = str(workdir / "saved_models" / "text_folder" / "1")
    assert "CaseFoldUTF8" in saved_model_ops(export_dir)  # MiniLM is uncased: lower-casing is in the graph
    assert unservable_ops(export_dir) == []
