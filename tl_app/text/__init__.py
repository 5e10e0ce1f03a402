"""The text family: BERT encoders from keras-hub, fine-tuned to classify raw strings.

- `classification.BertTextClassification`: the family's base class (model, phases, augmentation, exports);
  a recipe implements `load_texts()` and sets `defaults`.
- `config.TextConfig`: its config fields.
- `presets`: which encoder (keras-hub names, local directories, the offline MiniLM); `model`: the classifier;
  `packing`: strings -> BERT inputs with ops TF Serving has; `augmentation`: EDA on training texts;
  `files`: class folders and CSV files -> texts; `glue`: SST-2 from tfds.

Importing this package imports no TensorFlow.
"""
from tl_app.text.classification import BertTextClassification
from tl_app.text.config import TextConfig

__all__ = ["BertTextClassification", "TextConfig"]
