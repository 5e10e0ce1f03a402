"""Text classification with a BERT encoder from keras-hub: `sst2`, `text_folder`, `text_csv`.

The family (`BertTextClassification`) carries the model, phases, augmentation
and export; each recipe says only where its texts come from.

Encoder (`preset`): a keras-hub BERT preset name (default
`bert_base_en_uncased`, downloaded by keras-hub when online), a local
keras-hub preset or Hugging Face BERT directory, or `offline` (all-MiniLM-L6-v2
from `tl-app assets minilm`); see `tl_app.bert_presets`.

Training runs in two phases (`tl_app.recipe.Phase`):
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

Texts are truncated to `sequence_length` WordPiece tokens ([CLS] and [SEP]
included); the log says how many were. Empty texts are dropped and counted.
Optional EDA augmentation (`augment=true`, `tl_app.text_augment`) changes
training batches only. The export's `serving_default` takes raw strings
(`text`, tf.string [N]) and returns probabilities, class_id and class_name;
tokenization and packing are in its graph, with only ops TF Serving
(core TF + TF-Text 2.12) has.
"""
from dataclasses import dataclass
from typing import List, Literal, Optional

import numpy as np

from tl_app import log
from tl_app.config import OptimizerName, RecipeConfig, ScheduleName
from tl_app.errors import UserError
from tl_app.recipe import DataSplits, FeatureCache, Phase, Recipe, ServingSignature
from tl_app.registry import register

TOKEN_COUNT_BATCH = 512


@dataclass
class TextConfig(RecipeConfig):
    """Config of the BERT text recipes (on top of the fields every recipe has)."""

    preset: str = "bert_base_en_uncased"  # keras-hub BERT preset | offline | PATH (keras-hub or Hugging Face BERT dir)
    sequence_length: int = 128  # WordPiece tokens per text, [CLS] and [SEP] included
    pooling: Optional[Literal["cls", "mean"]] = None  # None: mean for preset=offline (MiniLM), cls otherwise
    epochs: int = 30  # head phase (cheap on cached features)
    learning_rate: float = 3e-3  # head phase (Adam)
    dropout: float = 0.1
    fine_tune_epochs: int = 3  # 0 = head phase only
    fine_tune_learning_rate: float = 2e-5
    fine_tune_optimizer: OptimizerName = "adamw"
    fine_tune_weight_decay: float = 0.01  # LayerNorm and bias excluded
    fine_tune_lr_schedule: ScheduleName = "linear"  # after warmup; decays to min_learning_rate
    fine_tune_warmup_fraction: float = 0.1  # used when warmup_steps is 0
    fine_tune_clipnorm: Optional[float] = 1.0
    feature_cache: Literal["auto", "off"] = "auto"  # head phase on pooled features computed once
    augment: bool = False  # EDA on training texts (turns the head phase's feature cache off)
    synonyms: Optional[str] = None  # TSV/JSON word -> synonyms file for synonym replacement/insertion
    synonym_rate: float = 0.1
    insertion_rate: float = 0.1
    swap_rate: float = 0.1
    deletion_rate: float = 0.1


class BertTextClassification(Recipe):
    """Base of the text recipes: BERT encoder (keras-hub), new softmax head, two phases, string exports.

    Subclasses implement `load_texts()` returning `tl_app.data.text_files.RawTexts`.

    Args:
        config: a `TextConfig`; None means the recipe's defaults.
    """

    Config = TextConfig
    serving_input_name = "text"

    def __init__(self, config=None):
        super().__init__(config)
        self._preset = None
        self._tokenizer = None
        self._classifier = None

    # ---- data ------------------------------------------------------------
    def load_data(self) -> DataSplits:
        from tl_app.bert_presets import load_tokenizer, resolve_preset

        cfg = self.config
        self._check_config()
        self._preset = resolve_preset(cfg.preset)  # seconds, before reading any data
        self._tokenizer = load_tokenizer(self._preset)
        raw = self.load_texts()
        return self._to_splits(raw)

    def load_texts(self):
        raise NotImplementedError(f"{type(self).__name__} must implement load_texts()")

    def _check_config(self):
        from tl_app.text_packing import MIN_SEQUENCE_LENGTH

        cfg = self.config
        if cfg.sequence_length < MIN_SEQUENCE_LENGTH:
            raise UserError(f"--set sequence_length={cfg.sequence_length}: must be at least {MIN_SEQUENCE_LENGTH}"
                            " ([CLS], one token, [SEP]); BERT's usual values are 128 to 512.")
        for name in ("synonym_rate", "insertion_rate", "swap_rate", "deletion_rate"):
            if not 0.0 <= getattr(cfg, name) <= 1.0:
                raise UserError(f"--set {name}={getattr(cfg, name)}: must be in [0, 1].")
        if cfg.synonyms and not cfg.augment:
            log.info("synonyms given but augment=false: no augmentation (--set augment=true to use them)")

    def _to_splits(self, raw):
        import tensorflow as tf

        notes = list(raw.notes)
        datasets = {}
        for split, (texts, labels) in raw.splits.items():
            keep = [i for i, t in enumerate(texts) if t.strip()]
            if len(keep) < len(texts):
                notes.append(f"{split}: dropped {len(texts) - len(keep)} empty text(s)")
            if not keep:
                raise UserError(f"the {split} split has no non-empty texts; add data (or raise validation_fraction /"
                                " test_fraction when they are carved from the rest).")
            texts = [texts[i] for i in keep]
            labels = np.asarray(labels, np.int64)[keep]
            if split == "train" and len(np.unique(labels)) < 2:
                raise UserError(f"the train split has only one class ({raw.class_names[int(labels[0])]}); "
                                "a classifier needs at least two.")
            if texts:
                notes.append(self._truncation_note(split, texts))
            datasets[split] = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), labels))
        return DataSplits(train=datasets["train"], validation=datasets["validation"], test=datasets["test"],
                          class_names=list(raw.class_names), test_split_name=raw.test_split_name, notes=notes)

    def _truncation_note(self, split, texts):
        """One line: how many texts of `split` have more tokens than fit (they are truncated)."""
        lengths = token_counts(self._tokenizer, texts, self.config.sequence_length)
        room = self.config.sequence_length - 2
        cut = int(np.sum(lengths > room))
        share = cut / max(len(texts), 1)
        median = int(np.median(lengths)) if len(lengths) else 0
        return (f"{split}: {cut} of {len(texts)} texts ({share:.1%}) truncated to {room} WordPiece tokens"
                f" (sequence_length {self.config.sequence_length}; median length {median} tokens)")

    # ---- model -----------------------------------------------------------
    def pooling(self):
        cfg = self.config
        return cfg.pooling or (self._preset.default_pooling if self._preset else "cls")

    def build_model(self, data: DataSplits):
        from tl_app.bert_presets import load_backbone, load_tokenizer, resolve_preset
        from tl_app.regularize import head_regularizer
        from tl_app.text_model import build_text_classifier

        cfg = self.config
        self._preset = self._preset or resolve_preset(cfg.preset)
        backbone = load_backbone(self._preset)
        if cfg.sequence_length > backbone.max_sequence_length:
            raise UserError(f"--set sequence_length={cfg.sequence_length}: this encoder has "
                            f"{backbone.max_sequence_length} positions; choose at most that.")
        tokenizer = self._tokenizer or load_tokenizer(self._preset)
        pooling = self.pooling()
        log.info(f"encoder: {self._preset.description}; {backbone.num_layers} layers, hidden {backbone.hidden_dim},"
                 f" {backbone.count_params():,} parameters; pooling {pooling}; sequence_length {cfg.sequence_length}")
        self._classifier = build_text_classifier(backbone, tokenizer, len(data.class_names), cfg.sequence_length,
                                                 pooling=pooling, dropout=cfg.dropout, regularizer=head_regularizer(cfg),
                                                 name=f"{self.name}_bert")
        return self._classifier.model

    # ---- training --------------------------------------------------------
    def phases(self, model) -> List[Phase]:
        cfg = self.config
        classifier = self._classifier_of(model)
        head = Phase("head", cfg.epochs, cfg.learning_rate, prepare=lambda m: freeze(classifier.backbone),
                     feature_cache=self._head_feature_cache(classifier), augment=cfg.augment)
        phases = [head]
        if cfg.fine_tune_epochs > 0:
            phases.append(Phase(
                "fine_tune", cfg.fine_tune_epochs, cfg.fine_tune_learning_rate,
                prepare=lambda m: unfreeze(classifier.backbone, self.pooling()),
                augment=cfg.augment,
                options={"optimizer": cfg.fine_tune_optimizer, "weight_decay": cfg.fine_tune_weight_decay,
                         "lr_schedule": cfg.fine_tune_lr_schedule, "warmup_fraction": cfg.fine_tune_warmup_fraction,
                         "clipnorm": cfg.fine_tune_clipnorm},
            ))
        return phases

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
        from tl_app.text_augment import EdaConfig, augment_batches, load_synonyms

        cfg = self.config
        if not cfg.augment:
            return batched_dataset
        synonyms = load_synonyms(cfg.synonyms) if cfg.synonyms else {}
        eda = EdaConfig(synonym_rate=cfg.synonym_rate, insertion_rate=cfg.insertion_rate, swap_rate=cfg.swap_rate,
                        deletion_rate=cfg.deletion_rate, synonyms=synonyms)
        return augment_batches(batched_dataset, eda, cfg.seed)

    # ---- export ----------------------------------------------------------
    def serving_signatures(self, model, class_names):
        import tensorflow as tf

        from tl_app.export import classification_outputs

        names = tf.constant(list(class_names), dtype=tf.string)

        def serve(text):
            return classification_outputs(model(text, training=False), names)

        spec = tf.TensorSpec([None], tf.string, name=self.serving_input_name)
        return {"serving_default": ServingSignature(fn=serve, input_signature=[spec])}


def freeze(backbone):
    backbone.trainable = False


def unfreeze(backbone, pooling):
    """Make the whole encoder trainable; with mean pooling its unused [CLS] pooler stays frozen."""
    backbone.trainable = True
    if pooling == "mean":
        backbone.get_layer("pooled_dense").trainable = False
    log.info("phase 'fine_tune': the whole encoder trains")


def token_counts(tokenizer, texts, sequence_length):
    """WordPiece tokens per text before truncation, tokenized in the graph exactly as the model does."""
    import tensorflow as tf

    from tl_app.text_packing import BertTextInputs

    if not texts:
        return np.zeros([0], np.int64)
    inputs = BertTextInputs(tokenizer, sequence_length)
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(TOKEN_COUNT_BATCH)
    return np.concatenate([n.numpy() for n in ds.map(lambda t: inputs.token_ids(t).row_lengths())])


@dataclass
class Sst2Config(TextConfig):
    tfds_data_dir: Optional[str] = None  # where tfds keeps prepared data; None = its default


@register("sst2")
class Sst2(BertTextClassification):
    """GLUE SST-2 sentiment (tfds glue/sst2) with a BERT encoder; reported on GLUE's validation split."""

    Config = Sst2Config
    # SST-2 sentences are short; the log says how many are truncated at 64 tokens.
    defaults = Sst2Config(sequence_length=64)

    def load_texts(self):
        from tl_app.data.text_tfds import sst2_texts

        cfg = self.config
        if cfg.data_dir:
            raise UserError(f"--data-dir {cfg.data_dir}: sst2 reads tfds (--set tfds_data_dir=DIR); for your own"
                            " texts use text_folder or text_csv.")
        return sst2_texts(cfg.tfds_data_dir, validation_fraction=cfg.validation_fraction, seed=cfg.seed)


@register("text_folder")
class TextFolder(BertTextClassification):
    """Your texts in class folders (--data-dir DIR: DIR/<class>/*.txt or DIR/train|test/<class>/...) with BERT."""

    defaults = TextConfig()

    def load_texts(self):
        from tl_app.data.text_files import text_folder_texts

        cfg = self.config
        return text_folder_texts(cfg.data_dir, validation_fraction=cfg.validation_fraction,
                                 test_fraction=cfg.test_fraction, seed=cfg.seed)


@dataclass
class TextCsvConfig(TextConfig):
    text_column: str = "text"
    label_column: str = "label"
    delimiter: Optional[str] = None  # None: tab for .tsv/.tab, else sniffed; "\t" or "tab" for tabs


@register("text_csv")
class TextCsv(BertTextClassification):
    """Your texts in a CSV/TSV file (--data-dir FILE; --set text_column=... --set label_column=...) with BERT."""

    Config = TextCsvConfig
    defaults = TextCsvConfig()

    def load_texts(self):
        from tl_app.data.text_files import csv_texts

        cfg = self.config
        if not cfg.data_dir:
            raise UserError("text_csv needs --data-dir FILE: a CSV/TSV file with a header row"
                            f" (columns '{cfg.text_column}' and '{cfg.label_column}').")
        return csv_texts(cfg.data_dir, cfg.text_column, cfg.label_column, cfg.delimiter,
                         validation_fraction=cfg.validation_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed)
