"""`sst2`: GLUE SST-2 sentiment from tfds with the text family (BERT encoder, new head, fine-tuning)."""
from dataclasses import dataclass
from typing import Optional

from tl_app.errors import UserError
from tl_app.registry import register
from tl_app.text import BertTextClassification, TextConfig


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
        from tl_app.text.glue import sst2_texts

        cfg = self.config
        if cfg.data_dir:
            raise UserError(f"--data-dir {cfg.data_dir}: sst2 reads tfds (--set tfds_data_dir=DIR); for your own"
                            " texts use text_folder or text_csv.")
        return sst2_texts(cfg.tfds_data_dir, validation_fraction=cfg.validation_fraction, seed=cfg.seed)
