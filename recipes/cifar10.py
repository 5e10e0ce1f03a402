"""`cifar10`: CIFAR-10 from tfds with the image family (MobileNetV2 base, new head, fine-tuning)."""
from tl_app.data.tfds_source import train_validation_test
from tl_app.errors import UserError
from tl_app.image import ImageClassification, ImageConfig
from tl_app.recipe import DataSplits
from tl_app.registry import register

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@register("cifar10")
class Cifar10(ImageClassification):
    """CIFAR-10 (tfds) with a MobileNetV2 base and a new softmax head; 32 px images resized to image_size."""

    defaults = ImageConfig(epochs=5, fine_tune_epochs=5)

    def load_images(self):
        import tensorflow as tf

        from tl_app.data.tfds_source import load_tfds

        cfg = self.config
        if cfg.data_dir:
            raise UserError(f"--data-dir {cfg.data_dir}: cifar10 reads tfds (a tfds data folder: --set tfds_data_dir=DIR);"
                            " for your own class folders use the image_folder recipe.")
        datasets, info = load_tfds("cifar10", train_validation_test(cfg.validation_fraction), data_dir=cfg.tfds_data_dir,
                                   offline_hint="Run once online, or use the image_folder recipe with --data-dir DIR"
                                                " of class folders.")
        if info.features["label"].num_classes != len(CIFAR10_CLASSES):
            raise UserError(f"tfds cifar10 has {info.features['label'].num_classes} classes here, expected 10;"
                            " check --set tfds_data_dir.")
        # Keep the small 32 px uint8 images in memory; the model resizes them to image_size.
        as_float = lambda image, label: (tf.cast(image, tf.float32), label)  # noqa: E731
        ready = {k: ds.cache().map(as_float, num_parallel_calls=tf.data.AUTOTUNE) for k, ds in datasets.items()}
        return DataSplits(train=ready["train"], validation=ready["validation"], test=ready["test"],
                          class_names=list(CIFAR10_CLASSES))
