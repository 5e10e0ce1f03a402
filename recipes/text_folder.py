"""`text_folder`: your texts in class folders with the text family (BERT encoder, new head, fine-tuning)."""
from tl_app.registry import register
from tl_app.text import BertTextClassification, TextConfig
from tl_app.text.files import text_folder_texts


@register("text_folder")
class TextFolder(BertTextClassification):
    """Your texts in class folders (--data-dir DIR: DIR/<class>/*.txt or DIR/train|test/<class>/...) with BERT."""

    defaults = TextConfig()

    def load_texts(self):
        cfg = self.config
        return text_folder_texts(cfg.data_dir, validation_fraction=cfg.validation_fraction,
                                 test_fraction=cfg.test_fraction, seed=cfg.seed)
