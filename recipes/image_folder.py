"""`image_folder`: your images in class folders with the image family (MobileNetV2 base, new head, fine-tuning)."""
from tl_app.image import ImageClassification, ImageConfig
from tl_app.image.data import image_folder_splits
from tl_app.registry import register


@register("image_folder")
class ImageFolder(ImageClassification):
    """Your images in class folders (--data-dir DIR: DIR/<class>/*.jpg or DIR/train|test/<class>/...) with MobileNetV2."""

    defaults = ImageConfig(epochs=5, fine_tune_epochs=5)

    def load_images(self):
        cfg = self.config
        return image_folder_splits(cfg.data_dir, cfg.image_size, validation_fraction=cfg.validation_fraction,
                                   test_fraction=cfg.test_fraction, seed=cfg.seed, on_bad_image=cfg.on_bad_image,
                                   keep_pixels=cfg.image_cache == "memory")
