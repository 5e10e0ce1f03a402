"""Config of the BERT text recipes (on top of the fields every recipe has)."""
from dataclasses import dataclass
from typing import Literal, Optional

from tl_app.config import OptimizerName, RecipeConfig, ScheduleName


@dataclass
class TextConfig(RecipeConfig):
    """Config of the BERT text recipes (on top of the fields every recipe has)."""

    preset: str = "auto"  # auto (keras-hub bert_base_en_uncased if reachable, else offline) | keras-hub BERT preset | offline | PATH
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
