"""The text family's base class: text classification with a pretrained encoder, for any source of texts.

`BertTextClassification` carries the model, phases, augmentation and export;
a recipe (`sst2`, `text_folder`, `text_csv`, or yours) says only where its
texts come from, by implementing `load_texts()`.

Encoder (`preset`): `auto` (the default: keras-hub's `bert_base_en_uncased`
when it can be downloaded, else the offline encoder; the log names which), a
keras-hub preset name of BERT, DistilBERT, RoBERTa, DeBERTaV3, ALBERT, ELECTRA
or XLM-RoBERTa, a local keras-hub preset directory of one or a Hugging Face BERT
directory, `offline` / `minilm_l6` (all-MiniLM-L6-v2, `tl-app assets minilm`) or
`minilm_l3` (`tl-app assets minilm_l3`); see `text.presets` and `text.encoders`
(tokenizer, packing, pooling and TF-Serving servability per encoder).

Training runs in two phases (`tl_app.recipe.Phase`), after an optional third:
0. `adapt` (`adapt_epochs` > 0, off by default; BERT encoders only): the encoder continues its
   pretraining as keras-hub's `BertMaskedLM` on `adapt_data` (default: the
   training texts, labels ignored), with held-out masked-token perplexity
   before and after (`text.adaptation`, `text.masked_lm`); a new masked-LM
   head first trains alone for `adapt_head_epochs` (`adapt_head`).
1. `head`: the encoder frozen, a new softmax head trained with Adam at
   `learning_rate` (3e-3) for `epochs` (30). Without augmentation the head
   trains on pooled features the encoder computes once (`feature_cache=auto`):
   on BBC News (1,781 texts at 128 tokens, 2 cores) extraction took ~90 s and
   the 30 head epochs a few seconds; running the encoder every epoch instead
   (what `augment=true` needs) costs ~30 times the extraction.
2. `fine_tune` (`fine_tune_epochs` > 0): the whole encoder trains, as in the
   BERT paper's GLUE recipe: AdamW with weight decay 0.01 (LayerNorm and bias
   excluded), linear warmup over 10% of the steps (or `warmup_steps`), then
   linear decay to 0, gradient clipping at norm 1.0, learning rate 2e-5,
   batch 32, 3 epochs.

Texts are truncated to `sequence_length` tokens (the encoder's start and end
tokens included); the log says how many were. Empty texts are dropped and counted.
Optional EDA augmentation (`augment=true`, `text.augmentation`) changes
training batches only. The export's `serving_default` takes raw strings
(`text`, tf.string [N]) and returns probabilities, class_id and class_name;
tokenization and packing are in its graph, with only ops TF Serving
(core TF + TF-Text 2.12) has; an encoder whose export would need more is
refused before training when the run exports (`text.serving.ServableEncoder`).
"""
from typing import List

import numpy as np

from tl_app import log
from tl_app.data.label_sets import LabelSetHead
from tl_app.errors import UserError
from tl_app.phase_fields import SETTINGS, PhaseFields
from tl_app.recipe import DataSplits, FeatureCache, Phase, Recipe
from tl_app.text.config import TextConfig

# The fine-tune phase's settings and the fields it reads them from (the head phase reads the common ones).
FINE_TUNE_FIELDS = {"learning_rate": "fine_tune_learning_rate", "optimizer": "fine_tune_optimizer",
                    "weight_decay": "fine_tune_weight_decay", "lr_schedule": "fine_tune_lr_schedule",
                    "warmup_fraction": "fine_tune_warmup_fraction", "clipnorm": "fine_tune_clipnorm"}


class BertTextClassification(LabelSetHead, Recipe):
    """Base of the text recipes: a keras-hub encoder (BERT, RoBERTa, ...), new softmax head, two phases, string exports.

    Subclasses implement `load_texts()` returning `tl_app.text.files.RawTexts`
    (per split a list of strings and int labels; `text.files` reads class folders and CSV files).

    Args:
        config: a `TextConfig`; None means the recipe's defaults.

    Examples:
        >>> from tl_app.text import BertTextClassification, TextConfig
        >>> from tl_app.text.files import text_folder_texts
        >>> class Tickets(BertTextClassification):
        ...     '''Support tickets in class folders.'''
        ...     defaults = TextConfig(preset="offline", sequence_length=64)
        ...     def load_texts(self):
        ...         cfg = self.config
        ...         return text_folder_texts(cfg.data_dir, seed=cfg.seed)
        >>> Tickets().config.sequence_length
        64
    """

    Config = TextConfig
    serving_input_name = "text"
    architecture_fields = ("hidden_units",)  # what an `--init-from` export must share with the run

    def __init__(self, config=None):
        super().__init__(config)
        self._preset = None
        self._tokenizer = None
        self._classifier = None
        self._adaptation = None

    base_field = "preset"

    def search_space(self):
        """The common head fields, head epochs and the head's hidden layer (0 = none); fine-tuning: its learning
        rate, epochs and warmup."""
        return {
            **super().search_space(),
            "epochs": {"type": "Choice", "values": [20, 30, 60]},
            "hidden_units": {"type": "Choice", "values": [0, 128, 256]},
            "fine_tune_learning_rate": {"type": "Float", "min_value": 1e-5, "max_value": 1e-4, "sampling": "log"},
            "fine_tune_epochs": {"type": "Choice", "values": [2, 3, 4]},
            "fine_tune_warmup_fraction": {"type": "Choice", "values": [0.0, 0.1, 0.2]},
        }

    def base_candidates(self, spec):
        """"offline": the encoders prepared offline (minilm_l6, minilm_l3); "all": those and every keras-hub
        preset of the families here (downloads: dropped when unreachable); else comma-separated presets."""
        from tl_app.text.encoders import ENCODERS, keras_hub_presets

        spec = spec.strip()
        offline = [e.name for e in ENCODERS.values() if e.asset]
        if spec == "offline":
            return offline
        if spec == "all":
            return offline + sorted(keras_hub_presets())
        return [name.strip() for name in spec.split(",") if name.strip()]

    # ---- data ------------------------------------------------------------
    @property
    def precision_workload(self):
        """`text_fine_tune`, or `text_fine_tune_small` for a narrow encoder (mixed_precision=auto; after load_data)."""
        from tl_app.engine.precision import text_workload
        from tl_app.text.presets import encoder_width

        return text_workload(encoder_width(self._preset) if self._preset is not None else None)

    def load_data(self) -> DataSplits:
        from tl_app.text.presets import load_tokenizer, resolve_preset

        cfg = self.config
        self._check_config()
        self._preset = resolve_preset(cfg.preset)  # seconds, before reading any data
        self._tokenizer = load_tokenizer(self._preset)
        if cfg.adapt_epochs > 0:
            from tl_app.text.presets import require_masked_lm

            require_masked_lm(self._preset, f"adapt_epochs={cfg.adapt_epochs}", "adapt_epochs=0")
        raw = self.load_texts()
        if cfg.adapt_epochs > 0:  # before the token counts of the splits: a bad adapt_data costs seconds
            self._adaptation = self._load_adaptation(raw)
        splits = self._to_splits(raw)
        splits.notes.extend(self._adaptation.notes if self._adaptation else [])
        return splits

    def _load_adaptation(self, raw):
        """The masked LM's text: `adapt_data`, else the training texts (labels ignored, never validation or test)."""
        from tl_app.text.adapt_data import read_adapt_texts
        from tl_app.text.adaptation import load_adaptation

        cfg = self.config
        if cfg.adapt_data:
            column = cfg.adapt_column or getattr(cfg, "text_column", "text")
            found = read_adapt_texts(cfg.adapt_data, column, "--set adapt_data")
        else:
            found = (raw.splits["train"][0], "the training texts, labels ignored", [])
        return load_adaptation(cfg, self._tokenizer, *found)

    def resolved_config(self):
        """`{"preset": "bert_base_en_uncased" | "offline"}` when `preset=auto` chose it (recorded in config.json)."""
        if self._preset is None or self.config.preset.strip() != "auto":
            return {}
        return {"preset": self._preset.choice}

    def load_texts(self):
        raise NotImplementedError(f"{type(self).__name__} must implement load_texts()")

    def _check_config(self):
        from tl_app.text.packing import MIN_SEQUENCE_LENGTH

        cfg = self.config
        if cfg.sequence_length < MIN_SEQUENCE_LENGTH:
            raise UserError(f"--set sequence_length={cfg.sequence_length}: must be at least {MIN_SEQUENCE_LENGTH}"
                            " ([CLS], one token, [SEP]); usual values are 128 to 512.")
        for name in ("synonym_rate", "insertion_rate", "swap_rate", "deletion_rate"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise UserError(f"--set {name}={getattr(cfg, name)}: must be in [0, 1].")
        if cfg.synonyms and not cfg.augment:
            log.info("synonyms given but augment=false: no augmentation (--set augment=true to use them)")

    def _to_splits(self, raw):
        import tensorflow as tf

        notes = list(raw.notes)
        datasets, references, excerpts = {}, None, {}
        for split, (texts, labels) in raw.splits.items():
            keep = [i for i, t in enumerate(texts) if t.strip()]
            if len(keep) < len(texts):
                notes.append(f"{split}: dropped {len(texts) - len(keep)} empty text(s)")
            if not keep:
                raise UserError(f"the {split} split has no non-empty texts; add data (or raise validation_fraction /"
                                " test_fraction when they are carved from the rest).")
            texts = [texts[i] for i in keep]
            labels = np.asarray(labels, np.float32 if self.multi_label else np.int64)[keep]
            if self.multi_label != (labels.ndim == 2):
                raise ValueError(f"{type(self).__name__}.load_texts gave labels of shape {labels.shape} for label_mode="
                                 f"{self.config.label_mode} (multi_label: multi-hot [N, L], else class ids [N])")
            if split == "train" and not self.multi_label and len(np.unique(labels)) < 2:
                raise UserError(f"the train split has only one class ({raw.class_names[int(labels[0])]}); "
                                "a classifier needs at least two.")
            if texts:
                notes.append(self._truncation_note(split, texts))
            excerpts[split] = [excerpt(t) for t in texts]
            if split == "test":
                references = excerpts[split]
            datasets[split] = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), labels))
        return DataSplits(train=datasets["train"], validation=datasets["validation"], test=datasets["test"],
                          class_names=list(raw.class_names), test_split_name=raw.test_split_name, notes=notes,
                          test_references=references, label_mode=self.config.label_mode,
                          references=excerpts)

    def _truncation_note(self, split, texts):
        from tl_app.text.packing import truncation_note

        return truncation_note(self._tokenizer, texts, self.config.sequence_length, split, advise=split == "train")

    # ---- model -----------------------------------------------------------
    def pooling(self):
        cfg = self.config
        return cfg.pooling or (self._preset.default_pooling if self._preset else "cls")

    def build_model(self, data: DataSplits):
        from tl_app.text.presets import load_backbone, load_tokenizer, resolve_preset
        from tl_app.engine.regularizers import head_regularizer
        from tl_app.text.model import build_text_classifier

        cfg = self.config
        self._preset = self._preset or resolve_preset(cfg.preset)
        backbone = load_backbone(self._preset)
        if cfg.sequence_length > backbone.max_sequence_length:
            raise UserError(f"--set sequence_length={cfg.sequence_length}: this encoder has "
                            f"{backbone.max_sequence_length} positions; choose at most that.")
        tokenizer = self._tokenizer or load_tokenizer(self._preset)
        pooling = self.pooling()
        entry = self._preset.entry
        log.info(f"encoder: {self._preset.description}; {entry.title}, {backbone.num_layers} layers, hidden"
                 f" {backbone.hidden_dim}, {backbone.count_params():,} parameters; pooling {pooling}"
                 f"{'' if pooling == 'mean' or entry.pretrained_pooler else ' (the first token)'};"
                 f" sequence_length {cfg.sequence_length}")
        self.fit_label_weights(data)  # multi_label: per-label positive weights of the loss
        self._classifier = build_text_classifier(backbone, tokenizer, len(data.class_names), cfg.sequence_length,
                                                 pooling=pooling, dropout=cfg.dropout, regularizer=head_regularizer(cfg),
                                                 name=f"{self.name}_bert", pretrained_pooler=entry.pretrained_pooler,
                                                 activation=self.head_activation(), hidden_units=cfg.hidden_units)
        return self._classifier.model

    # ---- training --------------------------------------------------------
    def phase_fields(self):
        """The head phase reads the common fields (`optimizer`, `weight_decay`, ...); fine-tuning its `fine_tune_*`
        ones; adaptation (masked LM) `adapt_*`."""
        from tl_app.text.adaptation import ADAPT_OPTIONS

        # The adapt phase fixes its optimizer (ADAPT_OPTIONS) and reads the rest of SETTINGS as the head does.
        adapt = {**{s: s for s in SETTINGS if s not in ADAPT_OPTIONS}, "learning_rate": "adapt_learning_rate",
                 **{name: name for name in ("adapt_data", "adapt_column", "adapt_holdout_fraction",
                                            "adapt_head_epochs", "adapt_head_learning_rate")}}
        return [PhaseFields("adapt", "adapt_epochs", adapt), PhaseFields.reading("head", "epochs"),
                PhaseFields.reading("fine_tune", "fine_tune_epochs", **FINE_TUNE_FIELDS)]

    def phases(self, model) -> List[Phase]:
        cfg = self.config
        classifier = self._classifier_of(model)
        head = Phase("head", cfg.epochs, cfg.learning_rate, prepare=lambda m: freeze(classifier.backbone),
                     feature_cache=self._head_feature_cache(classifier), augment=cfg.augment)
        phases = [head]
        if cfg.adapt_epochs > 0:
            phases[:0] = self._adapt_phases(classifier)
        if cfg.fine_tune_epochs > 0:
            fine = self.phase_fields()[-1]
            phases.append(Phase(
                "fine_tune", cfg.fine_tune_epochs, cfg.fine_tune_learning_rate,
                prepare=lambda m: unfreeze(classifier.backbone, self._pooler_used()),
                augment=cfg.augment,
                options=fine.options(cfg),  # fine_tune_optimizer, fine_tune_weight_decay, ...
            ))
        return phases

    def _adapt_phases(self, classifier):
        from tl_app.text.adaptation import adapt_phases
        from tl_app.text.masked_lm import MaskedLMTask
        from tl_app.text.masked_lm_data import masked_lm_preprocessor

        cfg = self.config
        preprocessor = masked_lm_preprocessor(self._tokenizer or classifier.inputs_layer.tokenizer, cfg.sequence_length)
        task = MaskedLMTask(classifier.backbone, self._preset, preprocessor, self._adaptation, cfg.seed)
        return adapt_phases(cfg.adapt_epochs, cfg.adapt_learning_rate, task, cfg.adapt_head_epochs,
                            cfg.adapt_head_learning_rate)

    def _pooler_used(self):
        """Whether the features come from the backbone's pooled output (else its pooler stays frozen)."""
        return self.pooling() == "cls" and self._preset is not None and self._preset.entry.pretrained_pooler

    def stages(self, stages):
        """Before `export`: the encoder's export must be TF-Serving-servable (`text.serving.ServableEncoder`).
        With an adapt phase: its perplexity before and after joins the metrics, after `evaluate`."""
        from tl_app.text.serving import ServableEncoder

        names = [stage.name for stage in stages]
        if "export" in names:
            at = names.index("export")
            stages = stages[:at] + [ServableEncoder()] + stages[at:]
            names = [stage.name for stage in stages]
        if self.config.adapt_epochs <= 0 or "evaluate" not in names:  # e.g. `tl-app export RUN_DIR`: no training
            return stages
        from tl_app.pipeline.phase_results import PhaseResults

        at = names.index("evaluate") + 1
        return stages[:at] + [PhaseResults("adaptation (held-out masked-token)")] + stages[at:]

    def _head_feature_cache(self, classifier):
        cfg = self.config
        if cfg.feature_cache == "off":
            log.info("head phase: encoder runs on the texts every epoch (feature_cache=off)")
            return None
        if cfg.augment:
            log.info("head phase: encoder runs on augmented texts every epoch (augment=true; no feature cache)")
            return None
        log.info("head phase: head trained on pooled features computed once by the frozen encoder")
        return FeatureCache(extractor=classifier.extractor, head=classifier.head)

    def augment(self, batched_dataset):
        from tl_app.text.augmentation import EdaConfig, augment_batches, load_synonyms

        cfg = self.config
        if not cfg.augment:
            return batched_dataset
        synonyms = load_synonyms(cfg.synonyms) if cfg.synonyms else {}
        eda = EdaConfig(synonym_rate=cfg.synonym_rate, insertion_rate=cfg.insertion_rate, swap_rate=cfg.swap_rate,
                        deletion_rate=cfg.deletion_rate, synonyms=synonyms)
        return augment_batches(batched_dataset, eda, cfg.seed)

    # ---- export ----------------------------------------------------------
    def serving_signatures(self, model, class_names):
        """`serving_default`: raw strings (`text`, tf.string [N]); tokenization and packing are in the graph.
        `serving_token_ids`: the packed token ids, for TFLite and clients that tokenize (`text.serving`)."""
        import tensorflow as tf

        from tl_app.export.signatures import classification_signature
        from tl_app.text.serving import TOKEN_IDS_SIGNATURE, token_id_signature

        spec = tf.TensorSpec([None], tf.string, name=self.serving_input_name)
        return {"serving_default": classification_signature(model, class_names, spec),
                TOKEN_IDS_SIGNATURE: token_id_signature(self._classifier_of(model), class_names)}

    def export_files(self, model):
        """tokenizer.json and the vocabulary (vocab.txt for WordPiece): the tokenizer, for clients of
        `serving_token_ids` (`text.serving`)."""
        from tl_app.text.serving import token_inputs, tokenizer_files

        classifier = self._classifier_of(model)
        return tokenizer_files(classifier.inputs_layer, token_inputs(classifier))

    def tflite_input(self, export_dir):
        from tl_app.text.serving import token_id_input

        return token_id_input(export_dir)


def excerpt(text, limit=80):
    """A text's first `limit` characters on one line: how predictions.csv and reports name a text."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def freeze(backbone):
    backbone.trainable = False


def unfreeze(backbone, pooler_used):
    """Make the whole encoder trainable; a pooler the features do not use (mean or first-token pooling) stays frozen."""
    backbone.trainable = True
    if not pooler_used and any(layer.name == "pooled_dense" for layer in backbone.layers):
        backbone.get_layer("pooled_dense").trainable = False
    log.info("phase 'fine_tune': the whole encoder trains")
