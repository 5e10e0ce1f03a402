"""Config of the text recipes (on top of the fields every recipe has)."""
from dataclasses import dataclass
from typing import Literal, Optional

from tl_app.config import OptimizerName, RecipeConfig, ScheduleName
from tl_app.data.label_sets import LabelModeConfig


@dataclass
class TextConfig(LabelModeConfig):
    """Config of the text recipes (on top of the fields every recipe has)."""

    # auto (keras-hub bert_base_en_uncased if reachable, else offline) | a keras-hub preset of BERT, DistilBERT,
    # RoBERTa, DeBERTaV3, ALBERT, ELECTRA, XLM-RoBERTa | offline (= minilm_l6) | minilm_l3 | PATH (text.encoders)
    preset: str = "auto"
    sequence_length: int = 128  # tokens per text, the start and end tokens ([CLS]/[SEP], <s>/</s>) included
    # None: the encoder's default (text.encoders): cls for BERT and ALBERT, mean for the MiniLMs and the others.
    # cls = the pretrained pooled output (BERT, ALBERT), else the first token's vector.
    pooling: Optional[Literal["cls", "mean"]] = None
    epochs: int = 30  # head phase (cheap on cached features)
    learning_rate: float = 3e-3  # head phase (Adam)
    dropout: float = 0.1
    hidden_units: int = 0  # > 0: a Dense(hidden_units, relu) layer in the head, before its dropout; 0 = none
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
    # Masked-LM adaptation of the encoder before the head phase (tl_app.text.masked_lm; docs/text-adaptation.md).
    adapt_epochs: int = 0  # 0 = off
    adapt_data: Optional[str] = None  # DIR of .txt | FILE.txt (a document a line) | FILE.csv/.tsv; None: the training texts
    adapt_column: Optional[str] = None  # the column of a CSV/TSV adapt_data; None: text_column if the recipe has one, else "text"
    adapt_learning_rate: float = 5e-5  # AdamW peak after 10% warmup, then linear decay
    adapt_head_epochs: int = 3  # a new masked-LM head (the preset has none) first trains alone, the encoder frozen
    adapt_head_learning_rate: float = 1e-3  # that warm-up's peak
    adapt_holdout_fraction: float = 0.1  # of the adaptation texts, held out for perplexity before and after


@dataclass
class MaskedLMConfig(RecipeConfig):
    """Config of `text_mlm`: masked-LM adaptation of a BERT encoder only; its one phase uses the optimizer fields."""

    preset: str = TextConfig.preset  # as the text recipes, BERT encoders only: keras-hub BERT preset | offline | minilm_l3 | PATH
    sequence_length: int = 128
    epochs: int = 3  # adaptation epochs
    learning_rate: float = 1e-4  # peak, after warmup
    # A new masked-LM head (the preset has none) first trains alone, the encoder frozen: as the text recipes' warm-up.
    head_epochs: int = TextConfig.adapt_head_epochs
    head_learning_rate: float = TextConfig.adapt_head_learning_rate  # that warm-up's peak
    optimizer: OptimizerName = "adamw"
    weight_decay: float = 0.01  # LayerNorm and bias excluded
    lr_schedule: ScheduleName = "linear"
    warmup_fraction: float = 0.1
    clipnorm: Optional[float] = 1.0
    adapt_column: str = "text"  # the column of a CSV/TSV --data-dir
    adapt_holdout_fraction: float = 0.1
