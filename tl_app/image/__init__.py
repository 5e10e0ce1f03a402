"""The image family: MobileNetV2 transfer learning on images of any size and format.

- `classification.ImageClassification`: the family's base class (model, phases, augmentation, exports);
  a recipe implements `load_images()` and sets `defaults`.
- `config.ImageConfig`: its config fields.
- `model`: the classifier (resize and preprocessing inside the model); `unfreezing`: which base layers train;
  `augmentation`: training-time random layers; `weights`: pretrained base weights (imagenet, offline, file);
  `data`: image files -> checked, decoded datasets; `serving`: the bytes and float-image signatures.

Importing this package imports no TensorFlow.
"""
from tl_app.image.classification import ImageClassification
from tl_app.image.config import ImageConfig

__all__ = ["ImageClassification", "ImageConfig"]
