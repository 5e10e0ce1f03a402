"""Every text encoder family of `tl_app.text.encoders` with a tiny random model (no download): it builds, trains,
exports as the text recipes export, its TF-Serving servability is what the table says, and the export answers as
the in-process model. Also the table's static facts against keras-hub, and each error line."""
import io
import json
import os
import sys

import numpy as np
import pytest

from helpers import run_python
from text_helpers import FILLER, NEGATIVE, POSITIVE, VOCABULARY, sentiment_texts, write_text_folder, write_tiny_bert_preset

WORDS = POSITIVE + NEGATIVE + FILLER + [".", ","]
FAMILIES = ("bert", "distil_bert", "roberta", "deberta_v3", "albert", "electra", "xlm_roberta")
TINY = dict(num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=64)
STRINGS = ["the movie was good .", "", "awful terrible film , bad plot", "bad " * 100, "Ünïcödé wörds"]


def _sentencepiece(**pieces):
    """A tiny SentencePiece model (whole words) trained on the test texts, with the family's special pieces."""
    import sentencepiece as spm  # the test extra installs it: no skip
    texts = sentiment_texts(200, seed=3)[0]
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=proto, vocab_size=len(WORDS) + 8,
                                   model_type="WORD", hard_vocab_limit=False, minloglevel=2, **pieces)
    return proto.getvalue()


def _bpe():
    """A tiny byte-level BPE whose merges spell every test word (with and without the leading space)."""
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    byte_chars = bytes_to_unicode()
    chars = list(byte_chars[1]) if isinstance(byte_chars, tuple) else list(byte_chars.values())
    vocabulary = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + chars)}
    merges = []
    for word in WORDS:
        for start in ("\u0120" + word, word):
            token = start[0]
            for char in start[1:]:
                merge = f"{token} {char}"
                token += char
                if merge not in merges:
                    merges.append(merge)
                vocabulary.setdefault(token, len(vocabulary))
    vocabulary["<mask>"] = len(vocabulary)
    return vocabulary, merges


def write_tiny_preset(family, directory):
    """A tiny random backbone of `family` and its tokenizer (test vocabulary), saved as a keras-hub preset."""
    import keras
    import keras_hub

    m = keras_hub.models
    keras.utils.set_random_seed(0)
    if family == "bert":
        return write_tiny_bert_preset(directory)
    if family in ("distil_bert", "electra"):
        tokenizer = (m.DistilBertTokenizer if family == "distil_bert" else m.ElectraTokenizer)(vocabulary=VOCABULARY)
    elif family == "roberta":
        tokenizer = m.RobertaTokenizer(*_bpe())
    elif family == "deberta_v3":
        tokenizer = m.DebertaV3Tokenizer(proto=_sentencepiece(
            pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]",
            unk_piece="[UNK]", user_defined_symbols="[MASK]"))
    elif family == "albert":
        tokenizer = m.AlbertTokenizer(proto=_sentencepiece(
            pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece="<pad>", unk_piece="<unk>", bos_piece="[CLS]",
            eos_piece="[SEP]", user_defined_symbols="[MASK]"))
    else:
        tokenizer = m.XLMRobertaTokenizer(proto=_sentencepiece(unk_id=0, bos_id=1, eos_id=2, pad_id=3))
    size = tokenizer.vocabulary_size()
    if family == "distil_bert":
        backbone = m.DistilBertBackbone(size, **TINY)
    elif family == "electra":
        backbone = m.ElectraBackbone(size, embedding_dim=16, **TINY)
    elif family == "roberta":
        backbone = m.RobertaBackbone(size, **TINY)
    elif family == "deberta_v3":
        backbone = m.DebertaV3Backbone(size, bucket_size=8, **TINY)
    elif family == "albert":
        backbone = m.AlbertBackbone(size, embedding_dim=16, **TINY)
    else:
        backbone = m.XLMRobertaBackbone(size, **TINY)
    os.makedirs(directory, exist_ok=True)
    backbone.save_to_preset(str(directory))
    tokenizer.save_to_preset(str(directory))
    return str(directory)


@pytest.fixture(scope="module")
def tiny_presets(tmp_path_factory):
    base = tmp_path_factory.mktemp("encoders")
    return {family: write_tiny_preset(family, base / family) for family in FAMILIES}


@pytest.fixture(scope="module")
def text_tree(tmp_path_factory):
    return write_text_folder(tmp_path_factory.mktemp("texts"), n_per_class=12)


def _one_error_line(result):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


# ---- the table, statically ---------------------------------------------------------------------------
def test_the_table_lists_without_tensorflow_and_has_the_keys_tl_app_bases_needs():
    code = """
import json, sys
from tl_app.text.encoders import describe_encoder, encoder_rows
rows = encoder_rows()
describe_encoder("deberta_v3_small_en")
print(json.dumps({"rows": rows, "tf": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tf"] is False and out["keras"] is False
    rows = {row["name"]: row for row in out["rows"]}
    assert set(rows) == {*FAMILIES, "minilm_l6", "minilm_l3"}
    keys = {"name", "kind", "architecture", "parameters", "input", "preprocessing", "weights", "licence",
            "feature_size", "servable"}
    for row in rows.values():
        assert keys <= set(row) and row["kind"] == "text"
        assert row["servable"] == "yes" or row["servable"].startswith("no: lacks ")
    assert rows["minilm_l6"]["weights"].startswith("offline (") and "minilm" in rows["minilm_l6"]["weights"]
    assert rows["minilm_l3"]["weights"].startswith("offline (") and "minilm_l3" in rows["minilm_l3"]["weights"]
    assert rows["bert"]["weights"] == "download (keras-hub preset)"
    assert rows["roberta"]["preprocessing"].startswith("BPE") and "<s> ... </s>" in rows["roberta"]["preprocessing"]


def test_the_tables_presets_parameters_and_families_are_keras_hubs():
    import keras_hub

    from tl_app.text.encoders import ENCODERS, family_of_preset, keras_hub_presets

    known = keras_hub_presets()
    for encoder in ENCODERS.values():
        if encoder.asset is None:
            backbone, tokenizer = (getattr(keras_hub.models, c) for c in (encoder.backbone, encoder.tokenizer))
            assert backbone.presets and tokenizer.presets
        for preset in encoder.presets:
            metadata = getattr(keras_hub.models, encoder.backbone).presets[preset.name]["metadata"]
            assert metadata["params"] == preset.parameters, preset.name
            assert f"{preset.layers}-layer" in metadata["description"], preset.name
            assert known[preset.name] == encoder.preset_path and family_of_preset(preset.name) is encoder
    assert family_of_preset("xlm_roberta_base_multi").name == "xlm_roberta"  # also under RobertaBackbone.presets


def test_the_offline_encoders_share_berts_classes_and_servability():
    from tl_app.text.encoders import ENCODERS

    bert = ENCODERS["bert"]
    for name in ("minilm_l6", "minilm_l3"):
        encoder = ENCODERS[name]
        assert (encoder.backbone, encoder.tokenizer, encoder.inputs, encoder.lacks) == (
            bert.backbone, bert.tokenizer, bert.inputs, bert.lacks)


# ---- each family, built, trained, exported, served --------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_exports_and_is_as_servable_as_the_table_says(family, tiny_presets, text_tree, tmp_path):
    import keras
    import tensorflow as tf

    from tl_app import registry
    from tl_app.engine.trainer import Trainer
    from tl_app.export import savedmodel as export
    from tl_app.export.servable_ops import unservable_ops
    from tl_app.text.encoders import ENCODERS
    from tl_app.text.model import backbone_input_names, has_pooled_output
    from tl_app.text.serving import TOKEN_IDS_SIGNATURE, token_inputs, tokenizer_from_files

    entry = ENCODERS[family]
    recipe = registry.get("text_folder")(None)
    cfg = recipe.config
    cfg.data_dir, cfg.preset, cfg.sequence_length = text_tree, tiny_presets[family], 16
    # The encoder fine-tunes (a traced train step through tokenizer and encoder) for one family of each tokenizer
    # kind; every family trains its head on the encoder's cached features and exports.
    fine_tune = 1 if family in ("bert", "roberta", "deberta_v3") else 0
    cfg.epochs, cfg.fine_tune_epochs, cfg.batch_size, cfg.fine_tune_learning_rate = 1, fine_tune, 8, 1e-3
    keras.utils.set_random_seed(0)
    data = recipe.load_data()
    assert recipe._preset.encoder == family and recipe.pooling() == entry.default_pooling
    model = recipe.build_model(data)
    classifier = recipe._classifier_of(model)
    # The table's facts about the family, from the built objects.
    tokenizer, backbone = classifier.inputs_layer.tokenizer, classifier.backbone
    assert type(backbone).__name__ == entry.backbone and type(tokenizer).__name__ == entry.tokenizer
    assert tuple(backbone_input_names(backbone)) == entry.inputs or set(backbone_input_names(backbone)) == set(entry.inputs)
    assert has_pooled_output(backbone) == entry.pooled_output
    specials = tuple(tokenizer.id_to_token(i) for i in (tokenizer.start_token_id, tokenizer.end_token_id,
                                                         tokenizer.pad_token_id))
    assert specials == entry.special
    Trainer(recipe, data, model, callbacks=[]).run_all()  # head phase (cached features)[, one fine-tune epoch]
    path = export.export_model(model, recipe.serving_signatures(model, data.class_names), str(tmp_path / family),
                               data.class_names, {"recipe": "text_folder"}, {}, extra_files=recipe.export_files(model))
    assert unservable_ops(path) == list(entry.lacks)  # the table cannot lie
    expected = model.predict(tf.constant(STRINGS), verbose=0)
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serving_default"](text=tf.constant(STRINGS))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, rtol=1e-4, atol=1e-5)
    # serving_token_ids on the packing the export's tokenizer files describe answers the same.
    names = token_inputs(classifier)
    assert names == [n for n in ("token_ids", "segment_ids", "padding_mask") if n in entry.inputs]
    assets = os.path.join(path, "assets.extra")
    files = {name: open(os.path.join(assets, name), "rb").read() for name in os.listdir(assets)}
    packed = tokenizer_from_files(files)(np.asarray(STRINGS, dtype=object))
    ids = {name: tf.constant(np.asarray(packed[name]).astype(np.int32)) for name in names}
    assert int(ids["token_ids"][0, 0]) == tokenizer.start_token_id
    by_ids = loaded.signatures[TOKEN_IDS_SIGNATURE](**ids)
    np.testing.assert_allclose(by_ids["probabilities"].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_a_non_bert_family_runs_end_to_end_from_the_command_line(workdir, cli, tiny_presets, text_tree):
    # DistilBERT: no segment ids, no pooled output (RoBERTa's byte-level BPE is slow to trace; its family test has it).
    result = cli("run", "text_folder", "--data-dir", text_tree, "--set", f"preset={tiny_presets['distil_bert']}",
                 "--set", "sequence_length=16", "--set", "batch_size=8", "--set", "epochs=1",
                 "--set", "fine_tune_epochs=0", "--set", "pooling=cls", "--no-serving-check")
    assert result.exit_code == 0, result.output
    assert "keras-hub preset directory" in result.output and "(DistilBERT)" in result.output and "(the first token)" in result.output
    assert "truncated to 14 WordPiece tokens" in result.output
    tokenizer = json.loads((workdir / "saved_models" / "text_folder" / "1" / "assets.extra" / "tokenizer.json").read_text())
    assert tokenizer["inputs"] == ["token_ids", "padding_mask"] and tokenizer["class"] == "DistilBertTokenizer"


# ---- names ----------------------------------------------------------------------------------------------
def test_offline_names_resolve_to_their_assets(monkeypatch, tiny_presets):
    from tl_app.text import presets

    asked = []

    def require(name):
        asked.append(name)
        return tiny_presets["bert"]

    monkeypatch.setattr(presets, "require", require)
    for spec, encoder, asset in (("offline", "minilm_l6", "minilm"), ("minilm_l6", "minilm_l6", "minilm"),
                                 ("minilm_l3", "minilm_l3", "minilm_l3")):
        resolved = presets.resolve_preset(spec)
        assert (resolved.encoder, resolved.choice, resolved.default_pooling, asked[-1]) == (encoder, spec, "mean", asset)
        assert f"offline asset '{asset}'" in resolved.description
    assert "MiniLM-L3" in presets.resolve_preset("minilm_l3").description


def test_keras_hub_names_resolve_to_their_family_and_unknown_ones_name_close_ones(monkeypatch):
    from tl_app.errors import UserError
    from tl_app.text import presets

    monkeypatch.setattr(presets, "kaggle_cached", lambda handle: True)  # no download, no probe
    for name, family in (("distil_bert_base_en_uncased", "distil_bert"), ("roberta_base_en", "roberta"),
                         ("deberta_v3_small_en", "deberta_v3"), ("albert_base_en_uncased", "albert"),
                         ("electra_small_discriminator_uncased_en", "electra"), ("xlm_roberta_base_multi", "xlm_roberta"),
                         ("bert_tiny_en_uncased", "bert")):
        resolved = presets.resolve_preset(name)
        assert (resolved.encoder, resolved.preset) == (family, name)
    with pytest.raises(UserError) as error:
        presets.resolve_preset("roberta_bas_en")
    assert "did you mean roberta_base_en" in str(error.value) and "\n" not in str(error.value)


def test_unknown_preset_is_one_line_with_close_names(workdir, cli, text_tree):
    line = _one_error_line(cli("run", "text_folder", "--data-dir", text_tree, "--set", "preset=deberta_v3_smal_en"))
    assert "not a keras-hub BERT preset" in line and "did you mean deberta_v3_small_en" in line


def test_a_keras_hub_directory_of_another_backbone_is_refused(tmp_path):
    from tl_app.errors import UserError
    from tl_app.text import presets

    (tmp_path / "config.json").write_text(json.dumps({"registered_name": "keras_hub>GPT2Backbone"}))
    with pytest.raises(UserError, match="not a text encoder this recipe takes"):
        presets.resolve_preset(str(tmp_path))


# ---- what only BERT does, and what TF Serving cannot run ------------------------------------------
def test_masked_lm_adaptation_of_a_non_bert_encoder_is_one_line_before_training(workdir, cli, tiny_presets, text_tree):
    line = _one_error_line(cli("run", "text_folder", "--data-dir", text_tree, "--set",
                               f"preset={tiny_presets['deberta_v3']}", "--set", "adapt_epochs=1"))
    assert "adapt_epochs=1: masked-LM adaptation needs a BERT encoder" in line and "adapt_epochs=0" in line
    assert not (workdir / "runs").exists() or not any((workdir / "runs").rglob("checkpoint.json"))
    line = _one_error_line(cli("run", "text_mlm", "--data-dir", text_tree, "--set", f"preset={tiny_presets['albert']}"))
    assert "masked-LM adaptation needs a BERT encoder" in line and "ALBERT" in line


def test_an_unservable_encoder_is_refused_before_training_when_exporting(workdir, cli, tiny_presets, text_tree,
                                                                         monkeypatch):
    """No family is unservable today (the table says so, and the family test checks it): pretend one is."""
    import dataclasses

    from tl_app.text import encoders

    lacking = dataclasses.replace(encoders.ENCODERS["roberta"], lacks=("TFText>RoundRobinTrim",))
    monkeypatch.setitem(encoders.ENCODERS, "roberta", lacking)
    args = ["run", "text_folder", "--data-dir", text_tree, "--set", f"preset={tiny_presets['roberta']}",
            "--set", "sequence_length=16", "--set", "epochs=1", "--set", "fine_tune_epochs=0"]
    line = _one_error_line(cli(*args))
    assert "TFText>RoundRobinTrim" in line and "--no-export" in line and "RoBERTa" in line
    assert not (workdir / "runs").exists() or not any((workdir / "runs").rglob("checkpoint.json"))
    assert encoders.encoder_rows()[2]["servable"] == "no: lacks TFText>RoundRobinTrim"


def test_describe_encoder_knows_families_presets_and_offline_names():
    from tl_app.errors import UserError
    from tl_app.text.encoders import describe_encoder

    assert describe_encoder("offline")["name"] == "minilm_l6"
    electra = describe_encoder("electra_small_discriminator_uncased_en")
    assert electra["feature_size"] == 256 and electra["cls_pooling"] == "the first token's vector"
    assert describe_encoder("albert")["backbone_inputs"] == ["token_ids", "segment_ids", "padding_mask"]
    assert describe_encoder("xlm_roberta")["masked_lm"].startswith("not supported")
    with pytest.raises(UserError):
        describe_encoder("gpt2")
    assert "tl_app.text.encoders" in sys.modules
