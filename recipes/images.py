"""Image transfer learning with MobileNetV2: `cifar10` and `image_folder`.

The family (`ImageClassification`) carries the model, phases, augmentation,
feature caching and export; each recipe says only where its images come from.

Training runs in phases (`tl_app.recipe.Phase`):
1. `head`: the base frozen, the new head trained at `learning_rate` for `epochs`.
2. `fine_tune` (`fine_tune_epochs` > 0): the top of the base (layers from
   `fine_tune_at`, default the top ~30%) trains too, at `fine_tune_learning_rate`
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
`tl_app.feature_store`), so a later run on the same data and base skips the
extraction too. Augmenting images would change those features every epoch,
so `augment_head_phase=true` turns the cache off (and `feature_cache=on` with
it is an error). The head phase is where caching pays most and augmentation
helps least (the base cannot adapt to the augmented images anyway).

Base weights (`weights`): `imagenet` (Keras download), `offline` (the
ImageNet-derived asset from `tl-app assets mobilenet_v2`, alpha 1.0 only), a
weights-file path, `none` (random, for tests), or `auto` (imagenet when it can
be had, else the prepared offline asset; the log says which).
"""
from dataclasses import dataclass
from typing import List, Literal, Optional

from tl_app import image_model, log
from tl_app.config import RecipeConfig
from tl_app.errors import UserError
from tl_app.recipe import DataSplits, FeatureCache, Phase, Recipe
from tl_app.registry import register

MIN_IMAGE_SIZE = 32  # MobileNetV2's smallest input
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class ImageConfig(RecipeConfig):
    """Config of the MobileNetV2 image recipes (on top of the fields every recipe has)."""

    image_size: int = 160  # side the base sees (96, 160, 224, ...); images of any size are resized to it
    alpha: float = 1.0  # MobileNetV2 width multiplier (offline weights: 1.0 only)
    weights: str = "auto"  # auto | imagenet | offline | none | PATH to a .weights.h5 / .h5 file
    fine_tune_epochs: int = 5  # 0 = head phase only
    fine_tune_at: Optional[int] = None  # first base layer that trains when fine-tuning; None = top ~30%
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


class ImageClassification(Recipe):
    """Base of the image recipes: MobileNetV2 base, new softmax head, phases, image exports.

    Subclasses implement `load_images()` returning unbatched `(float32 [H, W, 3]
    in 0..255, int64 label)` DataSplits.

    Args:
        config: an `ImageConfig`; None means the recipe's defaults.
    """

    Config = ImageConfig
    serving_input_name = "image_bytes"

    def __init__(self, config=None):
        super().__init__(config)
        self._weights = None
        self._classifier = None

    # ---- data ------------------------------------------------------------
    def load_data(self) -> DataSplits:
        self._check_config()
        self._weights = self._resolve_weights()  # seconds, before reading any data
        return self.load_images()

    def _check_config(self):
        """Fail before any data is read on values that would otherwise stop a run between phases."""
        cfg = self.config
        if cfg.image_size < MIN_IMAGE_SIZE:
            raise UserError(f"--set image_size={cfg.image_size}: MobileNetV2 needs at least {MIN_IMAGE_SIZE} px (e.g. 96, 160, 224).")

    def load_images(self) -> DataSplits:
        raise NotImplementedError(f"{type(self).__name__} must implement load_images()")

    def _resolve_weights(self):
        from tl_app.mobilenet_weights import resolve_weights

        cfg = self.config
        return resolve_weights(cfg.weights, cfg.alpha, cfg.image_size)

    # ---- model -----------------------------------------------------------
    def build_model(self, data: DataSplits):
        from tl_app.mobilenet_weights import build_base
        from tl_app.regularize import head_regularizer

        cfg = self.config
        resolved = self._weights or self._resolve_weights()
        log.info(f"base: MobileNetV2 alpha {cfg.alpha} at {cfg.image_size} px; weights: {resolved.description}")
        base = build_base(resolved, cfg.alpha, cfg.image_size)
        self._classifier = image_model.build_image_classifier(
            base, len(data.class_names), cfg.image_size, dropout=cfg.dropout, regularizer=head_regularizer(cfg),
            name=f"{self.name}_mobilenet_v2")
        return self._classifier.model

    # ---- training --------------------------------------------------------
    def phases(self, model) -> List[Phase]:
        cfg = self.config
        classifier = self._classifier_of(model)
        head_augments = cfg.augment and cfg.augment_head_phase
        head = Phase("head", cfg.epochs, cfg.learning_rate, prepare=lambda m: image_model.freeze(classifier.base),
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
        start = (image_model.check_fine_tune_at(base, cfg.fine_tune_at) if cfg.fine_tune_at is not None
                 else image_model.default_fine_tune_at(base))
        learning_rate = cfg.fine_tune_learning_rate or cfg.learning_rate / 10
        if cfg.gradual_unfreeze <= 0:
            return [Phase("fine_tune", cfg.fine_tune_epochs, learning_rate,
                          prepare=self._unfreezer(base, start, "fine_tune"), augment=cfg.augment)]
        stages = image_model.gradual_stages(base, start)
        phases = []
        for i, epochs in enumerate(image_model.split_epochs(cfg.fine_tune_epochs, cfg.gradual_unfreeze)):
            name = f"fine_tune_{i + 1}"
            stage_start = stages[min(i, len(stages) - 1)]
            phases.append(Phase(name, epochs, learning_rate, prepare=self._unfreezer(base, stage_start, name),
                                augment=cfg.augment))
        return phases

    @staticmethod
    def _unfreezer(base, start, phase_name):
        def prepare(model):
            image_model.unfreeze_from(base, start)
            log.info(f"phase '{phase_name}': base trains from {image_model.describe_layer(base, start)} up"
                     " (BatchNormalization frozen, inference mode)")

        return prepare

    def augment(self, batched_dataset):
        cfg = self.config
        if not cfg.augment:
            return batched_dataset
        random_layers = image_model.augmentation_layers(cfg.flip, cfg.rotation, cfg.zoom, cfg.translation, cfg.contrast)
        return image_model.augment_batches(batched_dataset, random_layers)

    # ---- export ----------------------------------------------------------
    def serving_signatures(self, model, class_names):
        from tl_app.image_serving import image_signatures

        return image_signatures(model, class_names, self.config.image_size)


@register("cifar10")
class Cifar10(ImageClassification):
    """CIFAR-10 (tfds) with a MobileNetV2 base and a new softmax head; 32 px images resized to image_size."""

    defaults = ImageConfig(epochs=5, fine_tune_epochs=5)

    def load_images(self):
        import tensorflow as tf

        from tl_app.data.tfds_source import load_tfds, train_validation_test

        cfg = self.config
        if cfg.data_dir:
            raise UserError(f"--data-dir {cfg.data_dir}: cifar10 reads tfds (a tfds data folder: --set tfds_data_dir=DIR);"
                            " for your own class folders use the image_folder recipe.")
        datasets, info = load_tfds(
            "cifar10",
            train_validation_test(cfg.validation_fraction),
            data_dir=cfg.tfds_data_dir,
            offline_hint="Run once online, or use the image_folder recipe with --data-dir DIR of class folders.",
        )
        # Keep the small 32 px uint8 images in memory; the model resizes them to image_size.
        as_float = lambda image, label: (tf.cast(image, tf.float32), label)  # noqa: E731
        ready = {k: ds.cache().map(as_float, num_parallel_calls=tf.data.AUTOTUNE) for k, ds in datasets.items()}
        if info.features["label"].num_classes != len(CIFAR10_CLASSES):
            raise UserError(f"tfds cifar10 has {info.features['label'].num_classes} classes here, expected 10; check --set tfds_data_dir.")
        return DataSplits(train=ready["train"], validation=ready["validation"], test=ready["test"],
                          class_names=list(CIFAR10_CLASSES))


@register("image_folder")
class ImageFolder(ImageClassification):
    """Your images in class folders (--data-dir DIR: DIR/<class>/*.jpg or DIR/train|test/<class>/...) with MobileNetV2."""

    defaults = ImageConfig(epochs=5, fine_tune_epochs=5)

    def load_images(self):
        from tl_app.data.images import image_folder_splits

        cfg = self.config
        return image_folder_splits(cfg.data_dir, cfg.image_size, validation_fraction=cfg.validation_fraction,
                                   test_fraction=cfg.test_fraction, seed=cfg.seed, on_bad_image=cfg.on_bad_image,
                                   keep_pixels=cfg.image_cache == "memory")
