"""`text_csv`: your texts in a CSV/TSV file with the text family (BERT encoder, new head, fine-tuning)."""
from dataclasses import dataclass
from typing import Literal, Optional

from tl_app.errors import UserError
from tl_app.registry import register
from tl_app.text import BertTextClassification, TextConfig
from tl_app.text.files import check_delimiter, csv_label_set_texts, csv_texts


@dataclass
class TextCsvConfig(TextConfig):
    text_column: str = "text"
    label_column: str = "label"  # multi_label: names joined by label_separator (or label_columns=a,b,c instead)
    delimiter: Optional[str] = None  # one character; None: tab for .tsv/.tab, else sniffed; "\t" or "tab" for tabs
    on_bad_row: Literal["skip", "error"] = "skip"  # wrong number of fields, empty text or label: skipped and counted


@register("text_csv")
class TextCsv(BertTextClassification):
    """Your texts in a CSV/TSV file (--data-dir FILE; --set text_column=... --set label_column=...) with BERT."""

    Config = TextCsvConfig
    defaults = TextCsvConfig()
    reads_label_sets = True  # --set label_mode=multi_label: a label column of names joined by ';', or 0/1 columns

    def check_config(self):
        super().check_config()
        check_delimiter(self.config.delimiter)

    def load_texts(self):
        cfg = self.config
        if not cfg.data_dir:
            raise UserError("text_csv needs --data-dir FILE: a CSV/TSV file with a header row"
                            f" (columns '{cfg.text_column}' and '{cfg.label_column}').")
        if self.multi_label:
            return csv_label_set_texts(cfg.data_dir, cfg)
        return csv_texts(cfg.data_dir, cfg.text_column, cfg.label_column, cfg.delimiter,
                         validation_fraction=cfg.validation_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed,
                         on_bad_row=cfg.on_bad_row)
