"""The text encoders: one table saying, per encoder, what it is, how it tokenizes and packs, how it pools, and
whether its export runs on TF Serving.

Every keras-hub text-classifier backbone family is here (BERT, DistilBERT, RoBERTa, DeBERTaV3, ALBERT, ELECTRA,
XLM-RoBERTa: any of their keras-hub preset names, or a local keras-hub preset directory of one), plus the offline
encoders `minilm_l6` (`preset=offline`, asset `minilm`) and `minilm_l3` (asset `minilm_l3`). The table is plain
data: reading it (`encoder_rows`, `describe_encoder`) imports no TensorFlow and builds no model.

Packing (`text.packing`) is the same for all, with each tokenizer's own special tokens:
`start + the first sequence_length - 2 token ids + end`, padded with `pad`. The backbone takes the inputs it names
(`inputs`) and returns either a dict with `pooled_output` (BERT, ALBERT, ELECTRA) or the bare token vectors.

Pooling: "cls" is the pooled output where the encoder's pooler was pretrained (`pretrained_pooler`: BERT's
next-sentence and ALBERT's sentence-order objectives trained it; all-MiniLM-L6-v2's checkpoint has its base
model's), else the first token's vector (ELECTRA's keras-hub pooler and minilm_l3's are not pretrained); "mean" is
the mean of the token vectors under the padding mask. Frozen-encoder features default to "mean" for the
families whose pretraining has no sentence-level objective (their first token means little before
fine-tuning; keras-hub's classifiers use it only because they fine-tune the whole encoder).

`servable` / `lacks`: measured, not assumed. A tiny model of each family, exported as the text recipes export,
checked with `tl_app.export.servable_ops.unservable_ops` (core TF + TF-Text 2.12.1 ops); tests/test_text_encoders.py
re-derives every entry, so the table cannot drift from what the code exports.
"""
import difflib
import importlib
from dataclasses import dataclass
from typing import Optional, Tuple

BERT_INPUTS = ("token_ids", "segment_ids", "padding_mask")
SEQUENCE_INPUTS = ("token_ids", "padding_mask")
MAX_POSITIONS = 512


@dataclass(frozen=True)
class Preset:
    """One keras-hub preset named in the table (parameters: keras-hub's preset metadata)."""

    name: str
    layers: int
    hidden: int
    parameters: int


@dataclass(frozen=True)
class Encoder:
    """One row of the table.

    Args:
        name: what `--set preset=` or `tl-app bases` calls the family or offline encoder.
        title: the architecture's name ("BERT").
        backbone: the keras-hub backbone class (`keras_hub.models.<backbone>`).
        tokenizer: the keras-hub tokenizer class.
        tokenizer_kind: "WordPiece", "BPE" or "SentencePiece".
        special: (start, end, pad) tokens the packing uses.
        inputs: the backbone's inputs, in the order `serving_token_ids` takes them.
        pooled_output: whether the backbone returns a dict with `pooled_output` (else the bare token vectors).
        pretrained_pooler: whether that pooled output was trained in pretraining (then "cls" pools with it).
        default_pooling: "cls" or "mean" when `pooling` is not set.
        lacks: ops of its export that TF Serving (core TF + TF-Text 2.12.1) lacks; () = servable.
        licence: of the weights (the representative presets'; others: their model cards).
        presets: the representative preset first, then the family's smallest and larger ones worth naming.
        preset_path: keras-hub's `metadata["path"]` of the family's presets (how a name maps to a family).
        casing: how the family's presets treat case.
        masked_lm: the keras-hub masked-LM task the `adapt` phase and `text_mlm` use; None: not supported.
        asset: the offline asset holding the weights (None: keras-hub downloads them).
        asset_module: the module registering that asset (imported only when asked).
        description: one line about the weights.
    """

    name: str
    title: str
    backbone: str
    tokenizer: str
    tokenizer_kind: str
    special: Tuple[str, str, str]
    inputs: Tuple[str, ...]
    pooled_output: bool
    pretrained_pooler: bool
    default_pooling: str
    lacks: Tuple[str, ...]
    licence: str
    presets: Tuple[Preset, ...] = ()
    preset_path: Optional[str] = None
    casing: str = ""
    masked_lm: Optional[str] = None
    asset: Optional[str] = None
    asset_module: Optional[str] = None
    description: str = ""
    layers: Optional[int] = None
    hidden: Optional[int] = None
    parameters: Optional[int] = None

    @property
    def servable(self):
        return not self.lacks


ENCODERS = {e.name: e for e in [
    Encoder("bert", "BERT", "BertBackbone", "BertTokenizer", "WordPiece", ("[CLS]", "[SEP]", "[PAD]"), BERT_INPUTS,
            True, True, "cls", (), "Apache-2.0 (Google's bert_* presets; the other presets: see the preset's model card)",
            (Preset("bert_base_en_uncased", 12, 768, 109482240), Preset("bert_tiny_en_uncased", 2, 128, 4385920),
             Preset("bert_small_en_uncased", 4, 512, 28763648), Preset("bert_large_en_uncased", 24, 1024, 335141888)),
            "bert", "uncased for *_uncased presets, cased otherwise", masked_lm="BertMaskedLM",
            description="BERT (Devlin et al. 2018), English Wikipedia + BooksCorpus; keras-hub also lists MiniLM, BGE,"
                        " E5 and mxbai encoders under BertBackbone"),
    Encoder("distil_bert", "DistilBERT", "DistilBertBackbone", "DistilBertTokenizer", "WordPiece",
            ("[CLS]", "[SEP]", "[PAD]"), SEQUENCE_INPUTS, False, False, "mean", (), "Apache-2.0",
            (Preset("distil_bert_base_en_uncased", 6, 768, 66362880),), "distil_bert",
            "uncased for *_uncased presets, cased otherwise",
            description="DistilBERT (Sanh et al. 2019), distilled from BERT base"),
    Encoder("roberta", "RoBERTa", "RobertaBackbone", "RobertaTokenizer", "BPE", ("<s>", "</s>", "<pad>"),
            SEQUENCE_INPUTS, False, False, "mean", (), "MIT",
            (Preset("roberta_base_en", 12, 768, 124052736), Preset("roberta_large_en", 24, 1024, 354307072)),
            "roberta", "cased (byte-level BPE)", description="RoBERTa (Liu et al. 2019), 160GB of English text"),
    Encoder("deberta_v3", "DeBERTaV3", "DebertaV3Backbone", "DebertaV3Tokenizer", "SentencePiece",
            ("[CLS]", "[SEP]", "[PAD]"), SEQUENCE_INPUTS, False, False, "mean", (), "MIT",
            (Preset("deberta_v3_small_en", 6, 768, 141304320), Preset("deberta_v3_extra_small_en", 12, 384, 70682112),
             Preset("deberta_v3_base_en", 12, 768, 183831552)),
            "deberta_v3", "cased", description="DeBERTaV3 (He et al. 2021), ELECTRA-style pretraining"),
    Encoder("albert", "ALBERT", "AlbertBackbone", "AlbertTokenizer", "SentencePiece", ("[CLS]", "[SEP]", "<pad>"),
            BERT_INPUTS, True, True, "cls", (), "Apache-2.0",
            (Preset("albert_base_en_uncased", 12, 768, 11683584), Preset("albert_large_en_uncased", 24, 1024, 17683968)),
            "albert", "uncased", description="ALBERT (Lan et al. 2019): shared layers, 128-wide factorized embeddings"),
    Encoder("electra", "ELECTRA", "ElectraBackbone", "ElectraTokenizer", "WordPiece", ("[CLS]", "[SEP]", "[PAD]"),
            BERT_INPUTS, True, False, "mean", (), "Apache-2.0",
            (Preset("electra_small_discriminator_uncased_en", 12, 256, 13548800),
             Preset("electra_base_discriminator_uncased_en", 12, 768, 109482240)),
            "electra", "uncased", description="ELECTRA (Clark et al. 2020) discriminators; the generators are"
                                              " smaller masked LMs, not meant for classification"),
    Encoder("xlm_roberta", "XLM-RoBERTa", "XLMRobertaBackbone", "XLMRobertaTokenizer", "SentencePiece",
            ("<s>", "</s>", "<pad>"), SEQUENCE_INPUTS, False, False, "mean", (), "MIT",
            (Preset("xlm_roberta_base_multi", 12, 768, 277450752),), "xlm_roberta", "cased, 100 languages",
            description="XLM-RoBERTa (Conneau et al. 2019), CommonCrawl in 100 languages"),
    Encoder("minilm_l6", "BERT (all-MiniLM-L6-v2)", "BertBackbone", "BertTokenizer", "WordPiece",
            ("[CLS]", "[SEP]", "[PAD]"), BERT_INPUTS, True, True, "mean", (), "Apache-2.0", casing="uncased",
            masked_lm="BertMaskedLM", asset="minilm", asset_module="tl_app.text.presets", layers=6, hidden=384,
            parameters=22713216, description="all-MiniLM-L6-v2 (sentence-transformers), trained for mean-pooled"
                                             " sentence embeddings; `preset=offline` names it too"),
    Encoder("minilm_l3", "BERT (paraphrase-MiniLM-L3-v2)", "BertBackbone", "BertTokenizer", "WordPiece",
            ("[CLS]", "[SEP]", "[PAD]"), BERT_INPUTS, True, False, "mean", (), "Apache-2.0", casing="uncased",
            masked_lm="BertMaskedLM", asset="minilm_l3", asset_module="tl_app.text.minilm_l3", layers=3, hidden=384,
            parameters=17389824,  # as BertBackbone.count_params() counts: 17,241,984 + the (untrained) pooler
            description="paraphrase-MiniLM-L3-v2 (sentence-transformers), trained for mean-pooled sentence embeddings"),
]}
OFFLINE_ALIASES = {"offline": "minilm_l6"}  # `preset=offline` is MiniLM-L6
FAMILIES = tuple(e.name for e in ENCODERS.values() if e.asset is None)  # the keras-hub families


def get(name):
    """The `Encoder` called `name` (a family or an offline encoder); KeyError otherwise."""
    return ENCODERS[OFFLINE_ALIASES.get(name, name)]


def family_of_path(path):
    """The keras-hub family whose presets have `metadata["path"] == path`, or None."""
    return next((e for e in ENCODERS.values() if e.preset_path == path and e.asset is None), None)


def family_of_backbone(class_name):
    """The keras-hub family of a backbone class name ("RobertaBackbone", or "keras_hub>RobertaBackbone"), or None."""
    bare = class_name.split(">")[-1]
    return next((e for e in ENCODERS.values() if e.backbone == bare and e.asset is None), None)


def family_of_preset(name):
    """The family of a keras-hub built-in preset name, or None (imports keras-hub)."""
    path = keras_hub_presets().get(name)
    return family_of_path(path) if path else None


def keras_hub_presets():
    """{preset name: metadata path} of every keras-hub built-in preset of the families here (imports keras-hub)."""
    import keras_hub

    names = {}
    for family in FAMILIES:
        for preset, info in getattr(keras_hub.models, ENCODERS[family].backbone).presets.items():
            path = info.get("metadata", {}).get("path")
            if family_of_path(path) is not None:
                names.setdefault(preset, path)
    return names


def offline_names():
    return sorted([*OFFLINE_ALIASES, *(e.name for e in ENCODERS.values() if e.asset)])


def close_names(spec, known, limit=5):
    """The names in `known` (plus the offline names and `auto`) closest to `spec`, for an error line."""
    candidates = sorted({*known, *offline_names(), "auto"})
    found = difflib.get_close_matches(spec, candidates, n=limit, cutoff=0.6)
    if not found:  # e.g. "roberta": the names that start with it
        found = [name for name in candidates if name.startswith(spec.split("_")[0])][:limit]
    return found


# ---- what the table says, for `tl-app bases` and the docs ---------------------------------------------
def load_asset_module(encoder):
    """Import the module that registers `encoder`'s offline asset (by name: a lazy, plugin-style import)."""
    return importlib.import_module(encoder.asset_module) if encoder.asset_module else None


def asset_path(encoder):
    """The prepared directory of `encoder`'s offline asset, or None when it is not prepared (or not installed)."""
    from tl_app.assets import locate

    try:
        load_asset_module(encoder)
    except ImportError:
        return None
    return locate(encoder.asset)


def weights_source(encoder):
    """Where the weights come from here: "download (keras-hub preset)" or "offline (prepared: ...)" / "offline (not prepared: ...)"."""
    if encoder.asset is None:
        return "download (keras-hub preset)"
    if asset_path(encoder):
        return f"offline (prepared: asset {encoder.asset})"
    return f"offline (not prepared: tl-app assets {encoder.asset})"


def _asset_facts(encoder):
    """(licence, parameters, description) of an offline encoder, from its asset module when it says."""
    try:
        module = load_asset_module(encoder)
    except ImportError:
        module = None
    return (getattr(module, "LICENCE", None) or encoder.licence, getattr(module, "PARAMETERS", None) or encoder.parameters,
            getattr(module, "DESCRIPTION", None) or encoder.description)


def servable_text(encoder):
    return "yes" if encoder.servable else f"no: lacks {', '.join(encoder.lacks)}"


def preprocessing_text(encoder):
    start, end, pad = encoder.special
    casing = f", {encoder.casing}" if encoder.casing else ""
    return f"{encoder.tokenizer_kind}{casing}, {start} ... {end}, padded with {pad}"


def encoder_rows():
    """One dict per encoder (keras-hub families, then the offline encoders), for `tl-app bases`.

    Keys: name, kind ("text"), architecture, parameters, input, preprocessing, weights, licence, feature_size,
    servable ("yes" or "no: lacks OpA, OpB"), presets (names, the representative first). No model is built and no
    TensorFlow imported (an offline encoder's asset module is imported to see whether it is prepared).
    """
    return [_row(encoder) for encoder in ENCODERS.values()]


def _row(encoder):
    if encoder.presets:
        main = encoder.presets[0]
        layers, hidden, parameters = main.layers, main.hidden, main.parameters
        licence, about = encoder.licence, encoder.description
        architecture = f"{encoder.title} {layers} layers, {hidden} hidden ({main.name})"
    else:
        layers, hidden = encoder.layers, encoder.hidden
        licence, parameters, about = _asset_facts(encoder)
        architecture = f"{encoder.title}, {layers} layers, {hidden} hidden"
    return {
        "name": encoder.name,
        "kind": "text",
        "architecture": architecture,
        "parameters": parameters,
        "input": f"N tokens (sequence_length, default 128), max {MAX_POSITIONS}",
        "preprocessing": preprocessing_text(encoder),
        "weights": weights_source(encoder),
        "licence": licence,
        "feature_size": hidden,
        "servable": servable_text(encoder),
        "presets": [p.name for p in encoder.presets],
        "description": about,
    }


def describe_encoder(name):
    """The row of encoder `name` (a family, an offline encoder, or a keras-hub preset name of a family in the
    table), with the details: backbone and tokenizer classes, inputs, outputs, pooling, masked-LM support."""
    from tl_app.errors import UserError

    key = OFFLINE_ALIASES.get(name, name)
    encoder = ENCODERS.get(key)
    preset = None
    if encoder is None:
        encoder = next((e for e in ENCODERS.values() for p in e.presets if p.name == key), None)
        preset = next((p for p in encoder.presets if p.name == key), None) if encoder else None
    if encoder is None:
        raise UserError(f"unknown text encoder '{name}'; known: {', '.join([*ENCODERS, *OFFLINE_ALIASES])}.")
    row = _row(encoder)
    if preset is not None:
        row.update(architecture=f"{encoder.title} {preset.layers} layers, {preset.hidden} hidden ({preset.name})",
                   parameters=preset.parameters, feature_size=preset.hidden)
    start, end, pad = encoder.special
    row.update({
        "family": encoder.name,
        "backbone": f"keras_hub.models.{encoder.backbone}",
        "tokenizer": f"keras_hub.models.{encoder.tokenizer}",
        "tokenizer_kind": encoder.tokenizer_kind,
        "special_tokens": {"start": start, "end": end, "pad": pad},
        "packing": f"{start} + the first sequence_length - 2 token ids + {end}, padded with {pad}",
        "backbone_inputs": list(encoder.inputs),
        "backbone_outputs": "dict: sequence_output, pooled_output" if encoder.pooled_output else "token vectors [N, L, H]",
        "default_pooling": encoder.default_pooling,
        "cls_pooling": "the pretrained pooled output" if encoder.pretrained_pooler else "the first token's vector",
        "lacks_ops": list(encoder.lacks),
        "masked_lm": encoder.masked_lm or "not supported (adapt_epochs and text_mlm need a BERT encoder)",
        "asset": encoder.asset,
    })
    return row
