"""The image family's base class: transfer learning on any registered base, for any source of images.

`ImageClassification` carries the model, phases, augmentation, feature caching
and export; a recipe (`cifar10`, `image_folder`, or yours) says only where its
images come from, by implementing `load_images()`.

Training runs in phases (`tl_app.recipe.Phase`):
1. `head`: the base frozen, the new head trained at `learning_rate` for `epochs`.
2. `fine_tune` (`fine_tune_epochs` > 0): the top of the base (layers from
   `fine_tune_at`, default the base's own top fraction, ~30% for CNNs) trains too, at `fine_tune_learning_rate`
   (default learning_rate / 10), BatchNormalization frozen and in inference mode.
   With `gradual_unfreeze=K`, one more block unfreezes every K epochs (one
   phase per block, top block first, down to `fine_tune_at`, where later
   phases stay). Each phase recompiles; epoch numbers continue across phases.

Augmentation and the feature cache: augmentation (on by default: flip, zoom,
contrast; rotation and translation when set) applies to the fine-tune phases;
in the head phase only with `augment_head_phase=true`.
A head phase without augmentation trains on features computed once by the
frozen base (`feature_cache=auto`): extraction costs about one epoch, then each
head epoch is ~40x faster (measured: 3,000 images, 96 px; more with more
data), with the same accuracy. The features are kept on disk (`keep_features`,
`engine.feature_store`), so a later run on the same data and base skips the
extraction too. Augmenting images would change those features every epoch,
so `augment_head_phase=true` turns the cache off (and `feature_cache=on` with
it is an error). The head phase is where caching pays most and augmentation
helps least (the base cannot adapt to the augmented images anyway).

Base (`base`, `tl-app bases` lists them): `mobilenet_v2` by default, or any
registered backbone (`tl_app.image.backbones`: MobileNetV3, EfficientNet-Lite,
EfficientNetV2, ResNet50V2, ConvNeXt, Xception, ViT, or a package's own).
Base weights (`weights`): `imagenet` (a Keras download or keras-hub preset),
`offline` (the base's asset from `tl-app assets NAME`, where it has one), a
weights-file path, `none` (random, for tests), or `auto` (imagenet when it can
be had, else the prepared offline asset; the log says which).
"""
from typing import List

from tl_app import log
from tl_app.errors import UserError
from tl_app.image import augmentation, unfreezing
from tl_app.image.config import ImageConfig
from tl_app.image.model import build_image_classifier
from tl_app.phase_fields import PhaseFields
from tl_app.data.label_sets import LabelSetHead
from tl_app.recipe import DataSplits, FeatureCache, Phase, Recipe

class ImageClassification(LabelSetHead, Recipe):
    """Base of the image recipes: a pretrained base (`base`), new softmax head, phases, image exports.

    Subclasses implement `load_images()` returning unbatched `(float32 [H, W, 3]
    in 0..255, int64 label)` DataSplits; `tl_app.image.data.image_file_splits`
    makes them from any list of image files.

    Args:
        config: an `ImageConfig`; None means the recipe's defaults.

    Examples:
        >>> from tl_app.image import ImageClassification, ImageConfig
        >>> from tl_app.image.data import image_folder_splits
        >>> class Photos(ImageClassification):
        ...     '''My photos in class folders.'''
        ...     defaults = ImageConfig(image_size=96, epochs=3, fine_tune_epochs=2)
        ...     def load_images(self):
        ...         cfg = self.config
        ...         return image_folder_splits(cfg.data_dir, cfg.image_size, seed=cfg.seed)
        >>> Photos().config.image_size
        96
    """

    Config = ImageConfig
    serving_input_name = "image_bytes"
    export_config_values = {"weights": "none"}  # an export's model.weights.h5 holds the base's trained weights
    architecture_fields = ("base", "alpha", "hidden_units")
    precision_workload = "image_fine_tune"  # mixed_precision=auto: see tl_app.engine.precision
    base_field = "base"

    def __init__(self, config=None):
        super().__init__(config)
        self._weights = None
        self._classifier = None

    # ---- data ------------------------------------------------------------
    def load_data(self) -> DataSplits:
        self._check_config()
        self._weights = self._resolve_weights()  # seconds, before reading any data
        data = self.load_images()
        self.check_label_mode_of(data)
        return data

    def reuse_data(self, data):
        """The images do not depend on the base (its preprocessing is inside the model): `data` as they are,
        after this base's checks and weights."""
        self._check_config()
        self._weights = self._resolve_weights()
        return data

    def search_space(self):
        """The common head fields, head epochs and the head's hidden layer (0 = none); fine-tuning: its learning rate, the share of the base it
        trains (`fine_tune_fraction`) and its epochs."""
        return {
            **super().search_space(),
            "epochs": {"type": "Choice", "values": [5, 10, 20]},
            "hidden_units": {"type": "Choice", "values": [0, 128, 256]},
            "fine_tune_learning_rate": {"type": "Float", "min_value": 1e-5, "max_value": 1e-3, "sampling": "log"},
            "fine_tune_fraction": {"type": "Choice", "values": [0.1, 0.2, 0.3, 0.5]},
            "fine_tune_epochs": {"type": "Choice", "values": [3, 5, 8]},
        }

    def searched_values(self, fields):
        """As `Recipe.searched_values`, with fine-tuning's None fields as the run resolves them: the learning rate
        a tenth of the head's, the base's own top fraction (unless `fine_tune_at` sets the start)."""
        values = super().searched_values(fields)
        if "fine_tune_learning_rate" in values:
            values["fine_tune_learning_rate"] = self._fine_tune_learning_rate()
        if "fine_tune_fraction" in values and self.config.fine_tune_at is None:
            try:
                values["fine_tune_fraction"] = unfreezing.top_fraction(self.backbone, values["fine_tune_fraction"])
            except UserError:  # an unknown base: the run will say so
                pass
        return values

    def _fine_tune_learning_rate(self):
        """Fine-tuning's learning rate: `fine_tune_learning_rate`, or (None) a tenth of the head's."""
        cfg = self.config
        return cfg.learning_rate / 10 if cfg.fine_tune_learning_rate is None else cfg.fine_tune_learning_rate

    def base_candidates(self, spec):
        """"offline": the bases with an offline asset; "all": every registered base; else comma-separated names."""
        from tl_app.image.backbones import all_backbones, get

        spec = spec.strip()
        if spec == "offline":
            return sorted(name for name, b in all_backbones().items() if b.offline_asset)
        if spec == "all":
            return sorted(all_backbones())
        return [get(name.strip()).name for name in spec.split(",") if name.strip()]

    def load_evaluation_data(self) -> DataSplits:
        """The images alone: evaluating an export needs no pretrained base weights."""
        self._check_config()
        return self.load_images()

    def _check_config(self):
        """Fail before any data is read on values that would otherwise stop a run between phases."""
        cfg = self.config
        backbone = self.backbone
        problem = backbone.size_problem(cfg.image_size)
        if problem:
            raise UserError(f"--set image_size={cfg.image_size}: {problem}.")
        if cfg.fine_tune_fraction is not None and not 0 < cfg.fine_tune_fraction <= 1:
            raise UserError(f"--set fine_tune_fraction={cfg.fine_tune_fraction:g}: the share of the base's layers that"
                            " fine-tuning trains, within (0, 1] (e.g. 0.3), or none for the base's own default.")
        if cfg.alpha not in backbone.widths:
            raise UserError(f"--set alpha={cfg.alpha:g}: {backbone.name} is built with alpha"
                            f" {', '.join(f'{w:g}' for w in backbone.widths)}; alpha is a MobileNet width multiplier.")

    @property
    def backbone(self):
        """The `Backbone` the `base` config field names (a UserError naming close names when unknown)."""
        from tl_app.image.backbones import get

        return get(self.config.base)

    def load_images(self) -> DataSplits:
        raise NotImplementedError(f"{type(self).__name__} must implement load_images()")

    def _resolve_weights(self):
        from tl_app.image.weights import resolve_weights

        cfg = self.config
        return resolve_weights(cfg.weights, self.backbone, cfg.alpha, cfg.image_size)

    def resolved_config(self):
        """`{"weights": "imagenet" | "offline"}` when `weights=auto` chose them (recorded in config.json)."""
        if self._weights is None or self.config.weights.strip().lower() != "auto":
            return {}
        return {"weights": self._weights.choice}

    # ---- model -----------------------------------------------------------
    def build_model(self, data: DataSplits):
        from tl_app.engine.regularizers import head_regularizer
        from tl_app.image.weights import build_base

        cfg = self.config
        backbone = self.backbone
        resolved = self._weights or self._resolve_weights()
        width = f" alpha {cfg.alpha:g}" if len(backbone.widths) > 1 else ""
        log.info(f"base: {backbone.name} ({backbone.architecture}){width} at {cfg.image_size} px, preprocessing"
                 f" {backbone.preprocessing}; weights: {resolved.description}")
        base = build_base(resolved, backbone, cfg.alpha, cfg.image_size)
        self.fit_label_weights(data)  # multi_label: per-label positive weights of the loss
        self._classifier = build_image_classifier(
            base, len(data.class_names), cfg.image_size, dropout=cfg.dropout, regularizer=head_regularizer(cfg),
            name=f"{self.name}_{backbone.name}", backbone=backbone, activation=self.head_activation(),
            hidden_units=cfg.hidden_units)
        return self._classifier.model

    # ---- training --------------------------------------------------------
    def phase_fields(self):
        """Both phases read the common fields; fine-tuning reads `fine_tune_learning_rate` when it is set."""
        cfg = self.config
        rate = "learning_rate" if cfg.fine_tune_learning_rate is None else "fine_tune_learning_rate"
        return [PhaseFields.reading("head", "epochs"),
                PhaseFields.reading("fine_tune", "fine_tune_epochs", learning_rate=rate, fine_tune_at="fine_tune_at",
                                    fine_tune_fraction="fine_tune_fraction",
                                    gradual_unfreeze="gradual_unfreeze")]

    def phases(self, model) -> List[Phase]:
        cfg = self.config
        classifier = self._classifier_of(model)
        head_augments = cfg.augment and cfg.augment_head_phase
        head = Phase("head", cfg.epochs, cfg.learning_rate, prepare=lambda m: unfreezing.freeze(classifier.base),
                     feature_cache=self._head_feature_cache(classifier, head_augments), augment=head_augments)
        phases = [head]
        if cfg.fine_tune_epochs > 0:
            phases += self._fine_tune_phases(classifier.base)
        return phases

    def _head_feature_cache(self, classifier, head_augments):
        """The head phase's FeatureCache, or None; logs which path the head phase takes."""
        mode = self.config.feature_cache
        if mode == "on" and head_augments:
            raise UserError("--set feature_cache=on cannot be combined with augment_head_phase=true: augmented images"
                            " change the features every epoch. Turn one of them off.")
        if mode == "off":
            log.info("head phase: full model on the images every epoch (feature_cache=off)")
            return None
        if head_augments:
            log.info("head phase: full model on augmented images every epoch (augment_head_phase=true; no feature cache)")
            return None
        log.info(f"head phase: head trained on features computed once by the frozen base (feature_cache={mode})")
        return FeatureCache(extractor=classifier.extractor, head=classifier.head)

    def _fine_tune_phases(self, base):
        cfg = self.config
        backbone = self.backbone
        start = (unfreezing.check_fine_tune_at(backbone, base, cfg.fine_tune_at) if cfg.fine_tune_at is not None
                 else unfreezing.default_fine_tune_at(backbone, base, cfg.fine_tune_fraction))
        learning_rate = self._fine_tune_learning_rate()
        if cfg.gradual_unfreeze <= 0:
            return [Phase("fine_tune", cfg.fine_tune_epochs, learning_rate,
                          prepare=self._unfreezer(backbone, base, start, "fine_tune"), augment=cfg.augment)]
        stages = unfreezing.gradual_stages(backbone, base, start)
        phases = []
        for i, epochs in enumerate(unfreezing.split_epochs(cfg.fine_tune_epochs, cfg.gradual_unfreeze)):
            name = f"fine_tune_{i + 1}"
            stage_start = stages[min(i, len(stages) - 1)]
            phases.append(Phase(name, epochs, learning_rate, prepare=self._unfreezer(backbone, base, stage_start, name),
                                augment=cfg.augment))
        return phases

    @staticmethod
    def _unfreezer(backbone, base, start, phase_name):
        def prepare(model):
            unfreezing.unfreeze_from(backbone, base, start)
            frozen = " (BatchNormalization frozen, inference mode)" if backbone.has_batchnorm else ""
            log.info(f"phase '{phase_name}': base trains from {unfreezing.describe_layer(backbone, base, start)} up{frozen}")

        return prepare

    def augment(self, batched_dataset):
        cfg = self.config
        if not cfg.augment:
            return batched_dataset
        random_layers = augmentation.augmentation_layers(cfg.flip, cfg.rotation, cfg.zoom, cfg.translation, cfg.contrast)
        return augmentation.augment_batches(batched_dataset, random_layers)

    # ---- export ----------------------------------------------------------
    def serving_examples(self, inputs):
        """Decoded images -> the PNG files `serving_default` takes (lossless: it decodes the same pixels)."""
        from tl_app.image.serving import BYTES_INPUT, encode_png

        return {BYTES_INPUT: encode_png(inputs)}

    def serving_signatures(self, model, class_names):
        from tl_app.image.serving import image_signatures

        return image_signatures(model, class_names, self.config.image_size)

    def tflite_input(self, export_dir):
        """`serving_images` at the trained size: decoding stays outside TFLite (it has no image decoders)."""
        from tl_app.image.serving import tflite_image_input

        return tflite_image_input(self.config.image_size)
