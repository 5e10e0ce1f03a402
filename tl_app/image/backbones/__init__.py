"""Image bases: one module per backbone family, a registry, and the entry-point group `tl_app.backbones`.

- `backbone.Backbone`: what a base says about itself (build, preprocessing, pooling, blocks, weights).
- `registry`: `get(name)`, `all_backbones()`, `register_backbone(backbone)`.
- families: `mobilenet` (mobilenet_v2, mobilenet_v3_small/large), `efficientnet_lite` (lite0..lite4),
  `efficientnet_v2` (b0..b3, s), `resnet` (resnet50_v2), `convnext` (convnext_tiny), `xception`, `vit` (vit_b16).

Importing this package imports no TensorFlow.
"""
from tl_app.image.backbones.backbone import Backbone, ImageNetWeights
from tl_app.image.backbones.registry import DEFAULT, all_backbones, get, names, register_backbone

__all__ = ["Backbone", "ImageNetWeights", "DEFAULT", "all_backbones", "get", "names", "register_backbone"]
