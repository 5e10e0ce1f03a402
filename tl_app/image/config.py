"""Config of the image recipes (on top of the fields every recipe has)."""
from dataclasses import dataclass
from typing import Literal, Optional

from tl_app.data.label_sets import LabelModeConfig


@dataclass
class ImageConfig(LabelModeConfig):
    """Config of the image recipes (on top of the fields every recipe has)."""

    base: str = "mobilenet_v2"  # the pretrained base: any name `tl-app bases` lists (efficientnet_lite0, xception, ...)
    image_size: int = 160  # side the base sees (96, 160, 224, ...); images of any size are resized to it
    alpha: float = 1.0  # MobileNet width multiplier (mobilenet_v2, mobilenet_v3_*; offline weights: 1.0 only)
    weights: str = "auto"  # auto | imagenet | offline | none | PATH to a .weights.h5 / .h5 file
    hidden_units: int = 0  # > 0: a Dense(hidden_units, relu) layer in the head, before its dropout; 0 = none
    fine_tune_epochs: int = 5  # 0 = head phase only
    fine_tune_at: Optional[int] = None  # first base layer that trains when fine-tuning; None = top ~30%
    fine_tune_fraction: Optional[float] = None  # with fine_tune_at none: the top share of layers that trains; None = the base's
    fine_tune_learning_rate: Optional[float] = None  # None = learning_rate / 10
    gradual_unfreeze: int = 0  # K > 0: unfreeze one more block every K fine-tune epochs
    augment: bool = True  # random flip/zoom/contrast (and rotation/translation when set) when training the base
    augment_head_phase: bool = False  # augment the head phase too (turns its feature cache off)
    flip: Literal["horizontal", "vertical", "horizontal_and_vertical", "none"] = "horizontal"
    # Rotation and translation are off by default: in a few fine-tuning epochs they cost accuracy on centred
    # images (see benchmarks/fashion_png.py); photos with varied pose and framing gain from e.g. 0.05 / 0.1.
    rotation: float = 0.0  # max rotation, fraction of a full turn (0.05 = +-18 degrees); 0 = off
    zoom: float = 0.1  # max zoom in/out, fraction of the size; 0 = off
    translation: float = 0.0  # max shift, fraction of height and width; 0 = off
    contrast: float = 0.1  # max contrast change factor; 0 = off
    feature_cache: Literal["auto", "on", "off"] = "auto"  # head phase on features computed once
    on_bad_image: Literal["skip", "error"] = "skip"  # corrupt/unreadable image files
    image_cache: Literal["memory", "none"] = "memory"  # keep decoded, resized images in memory
    tfds_data_dir: Optional[str] = None  # where tfds keeps prepared data; None = its default
