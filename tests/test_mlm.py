"""Masked-LM adaptation with a tiny BERT: perplexity, seeded masks, the adapt phase killed and resumed, text_mlm's encoder."""
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from helpers import KILL_AT_PRELUDE, assert_one_line_error, run_python
from text_helpers import VOCABULARY, write_text_csv, write_text_folder, write_tiny_bert_preset

# One layer: tracing a BERT training step costs ~9 s of CPU per layer; the logic is the same.
TINY = ["--set", "sequence_length=16", "--set", "batch_size=8"]


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    return write_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert_1"), num_layers=1)


@pytest.fixture(scope="module")
def text_tree(tmp_path_factory):
    return write_text_folder(tmp_path_factory.mktemp("texts"), n_per_class=40)


@pytest.fixture(scope="module")
def preprocessor(tiny_preset):
    import keras_hub

    from tl_app.text.masked_lm_data import masked_lm_preprocessor

    return masked_lm_preprocessor(keras_hub.models.BertTokenizer.from_preset(tiny_preset), 16)


def _scalars(run_dir, split, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(os.path.join(run_dir, split))
    acc.Reload()
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}


# ---- perplexity and masks ----------------------------------------------------------------
def test_masked_perplexity_equals_a_hand_computed_value_on_fixed_logits_and_masks():
    """Logits fixed per input token (an Embedding used as a lookup table); padded mask slots weigh 0."""
    import keras

    from tl_app.text.masked_lm import masked_perplexity

    vocabulary = 5
    table = np.random.default_rng(0).normal(size=(vocabulary, vocabulary)).astype("float32")
    lookup = keras.Sequential([keras.Input((3,), dtype="int32"),
                               keras.layers.Embedding(vocabulary, vocabulary, weights=[table])])
    x = np.array([[0, 1, 2], [3, 4, 0]], "int32")  # the logits of slot j are table[x[:, j]]
    mask_ids = np.array([[1, 4, 0], [2, 2, 0]], "int32")
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    batches = [(x[:1], mask_ids[:1], weights[:1]), (x[1:], mask_ids[1:], weights[1:])]

    log_softmax = table - np.log(np.exp(table).sum(-1, keepdims=True))
    picked = [log_softmax[x[b, j], mask_ids[b, j]] for b in range(2) for j in range(3) if weights[b, j]]
    expected = float(np.exp(-np.mean(picked)))  # exp of the mean cross-entropy over the 3 masked tokens
    assert masked_perplexity(lookup, batches) == pytest.approx(expected, rel=1e-5)

    # exp(loss) with Keras' default reduction also counts the 3 padded slots: another, lower figure.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(mask_ids, lookup(x), sample_weight=weights)
    assert float(np.exp(loss)) < expected * 0.9


def test_masks_are_a_function_of_seed_epoch_and_batch_only(preprocessor):
    """What a resumed phase relies on: epoch 1 masked alike whether the data starts at epoch 0 or 1."""
    from text_helpers import sentiment_texts

    from tl_app.text.masked_lm_data import heldout_batches, masked_batches, packed_token_ids

    texts, _ = sentiment_texts(40)
    token_ids = packed_token_ids(preprocessor, texts)
    assert token_ids.shape == (40, 16) and (token_ids[:, 0] == VOCABULARY.index("[CLS]")).all()

    def epochs(first, seed=42):
        ds, steps = masked_batches(preprocessor, token_ids, 8, seed, range(first, 3))
        batches = list(ds.as_numpy_iterator())
        assert steps == 5 and len(batches) == 5 * (3 - first)
        assert ds.options().autotune.enabled is False  # engine.datasets.without_autotune_thread: no stall at the end
        return [batches[i:i + 5] for i in range(0, len(batches), 5)]

    from_start, resumed, other_seed = epochs(0), epochs(1), epochs(0, seed=7)
    for a, b in zip(from_start[1:], resumed):
        for (xa, ya, wa), (xb, yb, wb) in zip(a, b):
            np.testing.assert_array_equal(xa["token_ids"], xb["token_ids"])
            np.testing.assert_array_equal(xa["mask_positions"], xb["mask_positions"])
            np.testing.assert_array_equal(ya, yb)
    first = np.concatenate([x["token_ids"] for x, _, _ in from_start[0]])
    second = np.concatenate([x["token_ids"] for x, _, _ in from_start[1]])
    assert not np.array_equal(first, second)  # each epoch its own order and masks
    assert not np.array_equal(first, np.concatenate([x["token_ids"] for x, _, _ in other_seed[0]]))

    # BERT's masking: ~15% of the non-special tokens selected; of those ~80% [MASK]; weights mark real slots.
    x = {k: np.concatenate([b[0][k] for e in from_start for b in e]) for k in ("token_ids", "padding_mask")}
    weights = np.concatenate([b[2] for e in from_start for b in e])
    eligible = x["padding_mask"].sum() - 2 * len(weights)  # [CLS] and [SEP] are never selected
    assert 0.10 < weights.sum() / eligible < 0.20
    mask_id = VOCABULARY.index("[MASK]")
    assert 0.65 < (x["token_ids"] == mask_id).sum() / weights.sum() < 0.95

    held = [list(heldout_batches(preprocessor, token_ids[:10], 4, 42).as_numpy_iterator()) for _ in range(2)]
    for (xa, ya, _), (xb, yb, _) in zip(*held):  # the same masks every time: before and after compare
        np.testing.assert_array_equal(xa["token_ids"], xb["token_ids"])
        np.testing.assert_array_equal(ya, yb)


# ---- the adapt phase, killed and resumed --------------------------------------------------
KILL_SCRIPT = KILL_AT_PRELUDE + """
import sys
from tl_app.cli import main
main(sys.argv[1:])
"""


def test_adapt_phase_resumes_after_sigkill_inside_it(workdir, cli, tiny_preset, text_tree):
    """The new head's warm-up (epoch 0), then the adapt phase (epochs 1-2) killed inside its second epoch."""
    args = ["run", "text_folder", "--data-dir", text_tree, "--set", f"preset={tiny_preset}", *TINY,
            "--set", "adapt_epochs=2", "--set", "adapt_learning_rate=0.005", "--set", "adapt_head_learning_rate=0.005",
            "--set", "adapt_head_epochs=1",
            "--set", "epochs=2", "--set", "fine_tune_epochs=0", "--no-export", "--run-id", "k"]
    script = workdir / "kill.py"
    script.write_text(KILL_SCRIPT)
    killed = subprocess.run([sys.executable, str(script), *args], cwd=workdir, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, KILL_AT="2:2", TF_CPP_MIN_LOG_LEVEL="3"))
    assert killed.returncode == -9, killed.stdout[-3000:] + killed.stderr[-3000:]
    assert "masked-LM head: new, randomly initialised" in killed.stdout
    assert "phase 'adapt_head': the encoder frozen, the new masked-LM head trains" in killed.stdout
    assert killed.stdout.count("after the head's warm-up (encoder unchanged)") == 1  # the warm-up's end, once
    before = float(re.search(r"perplexity before adaptation: ([\d.,]+)", killed.stdout).group(1).replace(",", ""))
    run_dir = workdir / "runs" / "text_folder" / "k"
    pointer = json.loads((run_dir / "checkpoints" / "checkpoint.json").read_text())
    state = pointer["state"]
    assert (state["phase"], state["phase_epochs_done"], state["epoch"]) == (1, 1, 2)
    assert state["results"]["adapt_perplexity_before"] == pytest.approx(before, abs=1e-4)
    head_only = state["results"]["adapt_perplexity_head_only"]
    with np.load(run_dir / "checkpoints" / pointer["file"]) as npz:
        head = [k for k in npz.files if k.startswith("task/")]
    assert len(head) == 5  # the masked-LM head's dense kernel and bias, LayerNorm gamma and beta, output bias

    resumed = cli(*args[:-2], "--run-id", "k")  # the same command continues the unfinished run
    out = resumed.output
    assert resumed.exit_code == 0, out
    assert "phase 2, 1 of its epochs done" in out and "(resuming after epoch 1 of it)" in out
    assert "perplexity before adaptation:" not in out  # measured once, on the weights the phase began from
    # Encoder and head restored: at the restart the held-out perplexity is the one after epoch 1 of the phase.
    restart = float(re.search(r"perplexity at the restart: ([\d.,]+)", out).group(1).replace(",", ""))
    assert restart == pytest.approx(_scalars(run_dir, "validation", "epoch_perplexity")[1], rel=1e-4)
    # Optimizers restored: each phase's linear decay ends at 0 (the resumed one would stop halfway without it).
    rates = _scalars(run_dir, "train", "epoch_learning_rate")
    assert sorted(rates) == [0, 1, 2, 3, 4] and rates[1] > 1e-4
    assert rates[0] == pytest.approx(0.0, abs=1e-7) and rates[2] == pytest.approx(0.0, abs=1e-7)
    assert sorted(_scalars(run_dir, "validation", "adapt_perplexity_head_only")) == [1]
    assert sorted(_scalars(run_dir, "validation", "adapt_perplexity_after")) == [3]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["adapt_perplexity_before"] == pytest.approx(before, abs=1e-4)
    assert metrics["adapt_perplexity_head_only"] == pytest.approx(head_only, abs=1e-4)
    assert metrics["adapt_perplexity_after"] < metrics["adapt_perplexity_before"]
    assert "accuracy" in metrics and "adaptation (held-out masked-token) metrics" in out


def test_a_new_head_warms_up_alone_then_the_encoder_adapts_on_later_masks(tiny_preset, preprocessor):
    """adapt_head trains the 5 head variables only; adapt trains the encoder too, on masks of its own epochs."""
    import keras_hub

    from tl_app.text.adapt_data import hold_out
    from tl_app.text.adaptation import adapt_phases
    from tl_app.text.masked_lm import AFTER, BEFORE, HEAD_ONLY, MaskedLMTask
    from tl_app.text.presets import resolve_preset

    texts = hold_out([f"the cat sat on the mat {i}" for i in range(20)], 0.2, seed=0, source="an example")
    backbone = keras_hub.models.BertBackbone.from_preset(tiny_preset)
    task = MaskedLMTask(backbone, resolve_preset(tiny_preset), preprocessor, texts, seed=0)
    warm_up, adapt = adapt_phases(2, 1e-4, task, head_epochs=1, head_learning_rate=1e-3)
    assert [(p.name, p.epochs, p.learning_rate) for p in (warm_up, adapt)] == [("adapt_head", 1, 1e-3),
                                                                               ("adapt", 2, 1e-4)]
    model = warm_up.task.build()
    assert adapt.task.build() is model and task.model is model  # one masked LM for both phases
    assert (warm_up.task.figures, adapt.task.figures) == ((BEFORE, HEAD_ONLY), (HEAD_ONLY, AFTER))

    warm_up.prepare(None)
    head = {v.path for v in model.trainable_weights}
    assert len(head) == 5 and all(p.startswith("mlm_head/") for p in head), head
    adapt.prepare(None)
    assert len(model.trainable_weights) > 5 and head <= {v.path for v in model.trainable_weights}

    def first_batch(t, first=0):
        ds, _ = t.train_data(batch_size=4, first_epoch=first, epochs=first + 1)
        return next(iter(ds))[0]["token_ids"].numpy()

    np.testing.assert_array_equal(first_batch(adapt.task), first_batch(task, first=1))  # epoch 1's masks
    assert not np.array_equal(first_batch(adapt.task), first_batch(warm_up.task))
    assert [p.name for p in adapt_phases(2, 1e-4, task, head_epochs=0)] == ["adapt"]


# ---- text_mlm: adapt only, save the encoder, reuse it ------------------------------------
def test_text_mlm_saves_an_encoder_that_text_recipes_load_and_classify_with(workdir, cli, tiny_preset, text_tree):
    import keras_hub

    from tl_app.text.masked_lm import masked_lm
    from tl_app.text.presets import resolve_preset

    lines = workdir / "notes.txt"  # a text file with one document a line
    lines.write_text("\n".join(p.read_text() for p in sorted(pathlib.Path(text_tree).rglob("*.txt"))))
    result = cli("run", "text_mlm", "--data-dir", str(lines), "--set", f"preset={tiny_preset}", *TINY,
                 "--epochs", "2", "--set", "learning_rate=0.005", "--set", "head_epochs=0")
    assert result.exit_code == 0, result.output
    assert "data: train 72, validation 8, held-out 8 examples\n" in result.output  # no "0 classes"
    encoder = workdir / "saved_models" / "text_mlm-encoder" / "1"
    assert "encoder saved as a keras-hub preset: saved_models/text_mlm-encoder/1" in result.output
    (mlm_run,) = (workdir / "runs" / "text_mlm").iterdir()
    metrics = json.loads((mlm_run / "metrics.json").read_text())
    assert metrics["adapt_perplexity_after"] < metrics["adapt_perplexity_before"]
    assert json.loads((mlm_run / "complete.json").read_text())["export"] == "saved_models/text_mlm-encoder/1"
    assert sorted(_scalars(mlm_run, "validation", "adapt_perplexity_before")) == [0]
    manifest = json.loads((encoder / "tl_app_encoder.json").read_text())
    assert manifest["files"]["task.weights.h5"]["bytes"] < 50_000  # the head alone, no optimizer moments
    assert {"config.json", "model.weights.h5", "task.weights.h5", "tokenizer.json"} <= set(manifest["files"])
    assert manifest["metrics"] == metrics and not (encoder / "saved_model.pb").exists()

    # The adapted encoder, not the original: its weights differ; a later adaptation continues its head.
    adapted = keras_hub.models.BertBackbone.from_preset(str(encoder))
    original = keras_hub.models.BertBackbone.from_preset(tiny_preset)
    assert not np.allclose(adapted.get_layer("token_embedding").get_weights()[0],
                           original.get_layer("token_embedding").get_weights()[0])
    again = masked_lm(adapted, resolve_preset(str(encoder)))
    saved = keras_hub.models.BertMaskedLM.from_preset(str(encoder), preprocessor=None)
    for a, b in zip(again.get_layer("mlm_head").get_weights(), saved.get_layer("mlm_head").get_weights()):
        np.testing.assert_array_equal(a, b)

    classify = cli("run", "text_folder", "--data-dir", text_tree, "--set", f"preset={encoder}", *TINY,
                   "--set", "epochs=30", "--set", "learning_rate=0.03", "--set", "fine_tune_epochs=0",
                   "--set", "pooling=mean", "--no-serving-check")
    assert classify.exit_code == 0, classify.output
    assert f"encoder: encoder adapted by text_mlm, {encoder}" in classify.output
    (run,) = (workdir / "runs" / "text_folder").iterdir()
    assert json.loads((run / "metrics.json").read_text())["accuracy"] >= 0.75
    assert (workdir / "saved_models" / "text_folder" / "1" / "saved_model.pb").is_file()

    # A second run takes the next version; the first is never touched.
    stamp = (encoder / "model.weights.h5").stat().st_mtime_ns
    later = cli("run", "text_mlm", "--data-dir", str(lines), "--set", f"preset={encoder}", *TINY, "--epochs", "0")
    assert later.exit_code == 0 and f"masked-LM head: restored from {encoder}" in later.output, later.output
    assert (workdir / "saved_models" / "text_mlm-encoder" / "2" / "tl_app_encoder.json").is_file()
    assert (encoder / "model.weights.h5").stat().st_mtime_ns == stamp
    # `tl-app export RUN_DIR` saves a finished text_mlm run's encoder again (the next version), no SavedModel.
    reexported = cli("export", str(mlm_run))
    assert reexported.exit_code == 0, reexported.output
    third = workdir / "saved_models" / "text_mlm-encoder" / "3"
    assert (third / "tl_app_encoder.json").is_file() and not (third / "saved_model.pb").exists()
    for a, b in zip(keras_hub.models.BertBackbone.from_preset(str(third)).get_weights(), adapted.get_weights()):
        np.testing.assert_array_equal(a, b)  # the run's final weights, from its last checkpoint


# ---- bad input: one line, exit 2, before training -----------------------------------------
@pytest.fixture(scope="module")
def saved_encoder(tmp_path_factory, tiny_preset):
    """A directory as text_mlm saves it (untrained: only its files matter here)."""
    import keras_hub

    from tl_app.text.encoder_preset import save_encoder_preset
    from tl_app.text.masked_lm_data import masked_lm_preprocessor

    model = keras_hub.models.BertMaskedLM(keras_hub.models.BertBackbone.from_preset(tiny_preset), preprocessor=None)
    preprocessor = masked_lm_preprocessor(keras_hub.models.BertTokenizer.from_preset(tiny_preset), 16)
    base = tmp_path_factory.mktemp("encoders")
    return save_encoder_preset(model, preprocessor, str(base), "text_mlm", {"source": "tiny", "pooling": "mean"})


def _text_folder(cli, text_tree, preset, *extra):
    return cli("run", "text_folder", "--data-dir", text_tree, "--set", f"preset={preset}", *TINY, *extra)


@pytest.mark.parametrize("damage, message", [
    ("remove:model.weights.h5", "incomplete: model.weights.h5 is missing"),
    ("remove:assets/tokenizer/vocabulary.txt", "incomplete: assets/tokenizer/vocabulary.txt is missing"),
    ("truncate:task.weights.h5", "task.weights.h5 is damaged"),
    ("remove:tl_app_encoder.json+config.json", "no config.json there"),
])
def test_a_damaged_or_incomplete_text_mlm_encoder_names_the_file(workdir, cli, text_tree, saved_encoder, tmp_path,
                                                                  damage, message):
    import shutil

    broken = tmp_path / "encoder"
    shutil.copytree(saved_encoder, broken)
    action, names = damage.split(":")
    for name in names.split("+"):
        if action == "remove":
            os.remove(broken / name)
        else:
            data = (broken / name).read_bytes()
            (broken / name).write_bytes(data[: len(data) // 2])
    assert_one_line_error(_text_folder(cli, text_tree, broken, "--set", "adapt_epochs=1"), message)
    assert not (workdir / "runs").exists() or not list((workdir / "runs").rglob("config.json"))


def test_bad_adapt_data_each_gives_one_line(workdir, cli, tiny_preset, text_tree, tmp_path):
    adapt = ["--set", "adapt_epochs=1"]
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    csv_file = write_text_csv(tmp_path / "reviews.csv", n=10)
    cases = [
        (tmp_path / "nowhere", "no such file or directory"),
        (tmp_path / "empty_dir", "no .txt files in it"),
        (tmp_path / "empty.txt", "no text in it"),
        (tmp_path / "image.txt", "not a text file"),
        (csv_file, "no column(s) 'text'; its columns are 'id', 'review', 'sentiment' (--set adapt_column=...)"),
    ]
    for path, message in cases:
        line = assert_one_line_error(_text_folder(cli, text_tree, tiny_preset, *adapt, "--set", f"adapt_data={path}"),
                                     message)
        assert line.startswith(f"error: --set adapt_data={path}") or "no column" in line
    one = tmp_path / "one.txt"
    one.write_text("a single document\n")
    assert_one_line_error(_text_folder(cli, text_tree, tiny_preset, *adapt, "--set", f"adapt_data={one}"),
                          "has 1 document(s); it needs at least 2")
    assert_one_line_error(cli("run", "digits", "--set", "adapt_epochs=2"),
                          "'adapt_epochs' is not a config field of digits", "It is a field of", "text_folder")
    assert_one_line_error(cli("run", "text_mlm", "--set", f"preset={tiny_preset}"), "text_mlm needs --data-dir")
    assert_one_line_error(_text_folder(cli, text_tree, tiny_preset, *adapt, "--set", "adapt_holdout_fraction=1"),
                          "adapt_holdout_fraction=1.0: must be in (0, 1)")
    assert not (workdir / "runs").exists() or not list((workdir / "runs").rglob("config.json"))


def test_text_mlm_config_and_list_import_no_tensorflow():
    proc = run_python("""
import sys
from click.testing import CliRunner
from tl_app.cli import cli
result = CliRunner().invoke(cli, ["config", "text_mlm"])
assert result.exit_code == 0, result.output
print(result.output)
print("HEAVY", sorted(m for m in ("tensorflow", "keras", "keras_hub") if m in sys.modules))
""")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout and "adapt_holdout_fraction" in proc.stdout and "sequence_length" in proc.stdout


# ---- the real encoder -------------------------------------------------------------------
@pytest.mark.real_assets
def test_offline_minilm_loads_as_a_masked_lm_with_a_fresh_head_and_says_so(capsys):
    """Encoder and tied token embeddings pretrained, head random: the perplexity before adaptation is high."""
    from tl_app.text.masked_lm import masked_lm, masked_perplexity
    from tl_app.text.masked_lm_data import heldout_batches, masked_lm_preprocessor, packed_token_ids
    from tl_app.text.presets import load_backbone, load_tokenizer, resolve_preset

    resolved = resolve_preset("offline")
    backbone = load_backbone(resolved)
    model = masked_lm(backbone, resolved)
    assert "masked-LM head: new, randomly initialised (keras-hub converts only the encoder of a Hugging Face BERT)" \
        in capsys.readouterr().out
    embeddings = backbone.get_layer("token_embedding")
    assert model.get_layer("mlm_head").token_embedding is embeddings  # tied to the pretrained embeddings
    preprocessor = masked_lm_preprocessor(load_tokenizer(resolved), 32)
    texts = ["The central bank raised interest rates to curb inflation.",
             "The striker scored twice in the second half of the final."] * 4
    perplexity = masked_perplexity(model, heldout_batches(preprocessor, packed_token_ids(preprocessor, texts), 4, 0))
    assert perplexity > 1000  # MiniLM's vocabulary has 30,522 tokens; a random head is far from knowing them
