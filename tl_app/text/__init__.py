"""The text family: keras-hub text encoders (BERT, DistilBERT, RoBERTa, DeBERTaV3, ALBERT, ELECTRA, XLM-RoBERTa,
the offline MiniLMs), fine-tuned to classify raw strings.

- `classification.BertTextClassification`: the family's base class (model, phases, augmentation, exports);
  a recipe implements `load_texts()` and sets `defaults`.
- `adaptation.MaskedLMAdaptation`: the base of `text_mlm` (masked-LM adaptation of an encoder only, saved
  as a keras-hub preset); `masked_lm`, `masked_lm_data`, `adapt_data`, `encoder_preset`: its parts, which
  the text recipes' `adapt` phase shares.
- `config.TextConfig`, `config.MaskedLMConfig`: their config fields.
- `encoders`: the table of encoders (tokenizer, packing, pooling, TF-Serving servability, licence), with
  `encoder_rows()` for `tl-app bases`; `presets`: which encoder (keras-hub names, local directories, the offline
  MiniLMs); `model`: the classifier; `packing`: strings -> encoder inputs with ops TF Serving has; `augmentation`: EDA on training texts;
  `files`: class folders and CSV files -> texts; `glue`: SST-2 from tfds.

Importing this package imports no TensorFlow.
"""
from tl_app.text.adaptation import MaskedLMAdaptation
from tl_app.text.classification import BertTextClassification
from tl_app.text.config import MaskedLMConfig, TextConfig

__all__ = ["BertTextClassification", "MaskedLMAdaptation", "MaskedLMConfig", "TextConfig"]
