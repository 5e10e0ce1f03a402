"""Every registered image base: builds at a tiny size with the declared parameters and feature size, has
blocks, unfreezes its top from a block start (BatchNormalization frozen) and trains; one base of each
family and class (`FULL`) also trains through the recipe's phases (a head step on cached features, a
fine-tune step), exports the family's three signatures, and its export answers as the in-process model.
The other variants of a family share that code with other sizes; they take one eager training step
instead of the traced phases and export (tracing EfficientNetV2-S's 513 layers for three signatures and a
train step cost ~5 minutes of the suite). Plus the registry's and the weights' one-line errors, and
`tl-app bases`.

The bases are the registry's, so a base added to setup.py's entry-point group is tested without a new
test. Random weights (`weights=none`): the real offline weights have their own tests (test_images.py,
test_backbone_efficientnet_lite.py, and the real_assets tests below).
"""
import os

import numpy as np
import pytest

from test_images import encode, photo_crops
from tl_app.errors import UserError
from tl_app.image.backbones import all_backbones, get

# Half the bases here, half in test_backbones_more.py: test files run on separate workers (pytest.ini).
BASES = sorted(all_backbones())[0::2]


def _full_check_bases():
    """The first base (by name) of each family and Backbone class: those go through phases and export.

    Not among them: the default base, mobilenet_v2 (test_images.py runs its phases, feature cache, exports and
    signatures at length); resnet50_v2, a plain `KerasApplicationBackbone` with Rescaling as xception is; and
    EfficientNetV2, a Keras application that preprocesses inside the base as MobileNetV3 and ConvNeXt do
    (tracing its 270+ layers for the phases and three signatures cost 1.5 minutes of the suite).
    """
    chosen = {}
    for name, backbone in sorted(all_backbones().items()):
        chosen.setdefault((backbone.family, type(backbone).__name__), name)
    return set(chosen.values()) - {"mobilenet_v2", "resnet50_v2", "efficientnet_v2_b0"}


FULL = _full_check_bases()
CLASSES = ["c0", "c1", "c2"]


def tiny_size(backbone):
    """The smallest side at or above 32 px the base accepts."""
    size = max(32, backbone.min_size)
    return -(-size // backbone.size_multiple) * backbone.size_multiple


def recipe_for(name, **fields):
    from tl_app import api

    cls = api.recipe_class("image_folder")
    return cls(api.resolve_config(cls, values={"base": name, "weights": "none", "image_size": tiny_size(get(name)),
                                               "batch_size": 4, "epochs": 1, "fine_tune_epochs": 1, **fields}))


def tiny_splits(size, per_class=4, seed=0):
    import tensorflow as tf

    from tl_app.recipe import DataSplits

    images = photo_crops(per_class * len(CLASSES), size, seed=seed)
    labels = np.repeat(np.arange(len(CLASSES)), per_class).astype(np.int64)
    split = tf.data.Dataset.from_tensor_slices((images, labels))
    return DataSplits(train=split, validation=split.take(3), test=split.take(3), class_names=CLASSES)


@pytest.mark.parametrize("name", BASES)
def test_every_base_builds_trains_exports_and_its_export_answers_as_the_model(name, tmp_path, feature_store_dir):
    check_base(name, tmp_path)


def check_base(name, tmp_path):
    """Build `name` tiny with random weights and train it; for `FULL` bases through the phases, then export."""
    if name not in FULL:
        return check_variant(name)
    import keras
    import tensorflow as tf

    from tl_app.engine.trainer import Trainer
    from tl_app.export import savedmodel
    from tl_app.image import unfreezing
    from tl_app.image.model import base_layer_name

    backbone = get(name)
    keras.utils.set_random_seed(0)
    recipe = recipe_for(name)
    size = tiny_size(backbone)
    data = tiny_splits(size)
    model = recipe.build_model(data)
    base = model.get_layer(base_layer_name(name))
    if backbone.size_multiple == 1:  # a ViT's position embeddings depend on the size: counted at the native size below
        assert base.count_params() == backbone.parameters
    assert model.get_layer("pool").output.shape[-1] == backbone.feature_size
    starts = backbone.block_starts(base)
    assert len(starts) >= 4, starts  # blocks to unfreeze one at a time

    head, fine = recipe.phases(model)
    assert head.feature_cache is not None  # the head trains on features the frozen base computed once
    trainer = Trainer(recipe, data, model, callbacks=[])
    frozen = [w.numpy().copy() for w in base.weights]
    trainer.run_phase(head)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(frozen, base.weights))
    trainer.run_phase(fine)
    units = backbone.units(base)
    first = min(i for i, unit in enumerate(units) if unit.trainable)
    block_start = max(s for s in starts if s <= first)  # fine-tuning starts at a block boundary (BN stays frozen)
    assert all(isinstance(unit, keras.layers.BatchNormalization) for unit in units[block_start:first])
    stages = unfreezing.gradual_stages(backbone, base, block_start)  # gradual_unfreeze: one more block each stage
    assert stages[-1] == block_start and stages == sorted(stages, reverse=True) and set(stages) <= set(starts)
    changed = [not np.array_equal(a, w.numpy()) for a, w in zip(frozen, base.weights)]
    assert any(changed) and not all(changed)  # the top trained, the bottom stayed
    norms = [layer for layer in base._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert bool(norms) == backbone.has_batchnorm and not any(layer.trainable for layer in norms)

    export = savedmodel.export_model(model, recipe.serving_signatures(model, CLASSES), str(tmp_path / "image_folder"),
                                     CLASSES, {"recipe": "image_folder", "base": name}, {})
    images = np.rint(photo_crops(2, size + 8, seed=3))  # whole pixel values: what a PNG holds
    expected = model(images, training=False).numpy()  # eager: no predict function to trace
    loaded = tf.saved_model.load(export)
    pngs = tf.constant([encode(image.astype(np.uint8), "PNG") for image in images])
    served = loaded.signatures["serving_default"](image_bytes=pngs)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=2e-4)
    served = loaded.signatures["serving_images"](images=tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=2e-4)
    assert [n.decode() for n in served["class_name"].numpy()] == [CLASSES[i] for i in expected.argmax(-1)]
    assert "serving_resized_images" in loaded.signatures


def check_variant(name):
    """Build, count, unfreeze the default top, and take one eager training step: the top moves, the rest stays."""
    import keras
    import tensorflow as tf

    from tl_app.image import unfreezing
    from tl_app.image.model import base_layer_name

    backbone = get(name)
    keras.utils.set_random_seed(0)
    recipe = recipe_for(name)
    size = tiny_size(backbone)
    model = recipe.build_model(tiny_splits(size))
    base = model.get_layer(base_layer_name(name))
    assert base.count_params() == backbone.parameters
    assert model.get_layer("pool").output.shape[-1] == backbone.feature_size
    starts = backbone.block_starts(base)
    assert len(starts) >= 4, starts
    start = unfreezing.default_fine_tune_at(backbone, base)
    assert start in starts
    unfreezing.unfreeze_from(backbone, base, start)
    units = backbone.units(base)
    expected = {id(v) for unit in units[start:] if not isinstance(unit, keras.layers.BatchNormalization)
                for v in unit.trainable_weights}
    assert {id(v) for v in base.trainable_variables} == expected and expected  # the top trains, BN and below do not
    head = model.get_layer("probabilities")
    before = [w.numpy().copy() for w in head.weights]
    images = photo_crops(4, size, seed=1)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(np.array([0, 1, 2, 0]), model(images, training=True)))
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)
    assert all(g is not None for g in gradients)  # every unfrozen weight is on the path to the loss
    keras.optimizers.SGD(0.1).apply(gradients, variables)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, head.weights))


def test_a_vit_counts_its_declared_parameters_at_its_native_size():
    backbone = get("vit_b16")
    assert backbone.build(backbone.native_size).count_params() == backbone.parameters


def test_unknown_base_and_bad_sizes_are_one_line_errors(cli, workdir, tmp_path):
    from test_images import write_color_tree

    data = write_color_tree(str(tmp_path / "data"), per_class=2)
    result = cli("run", "image_folder", "--data-dir", data, "--set", "base=efficientnet_v2_b9")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "unknown image base" in result.output and "efficientnet_v2_b0" in result.output and "tl-app bases" in result.output
    result = cli("run", "image_folder", "--data-dir", data, "--set", "base=xception", "--set", "image_size=64")
    assert result.exit_code == 2 and "xception needs at least 71 px" in result.output
    result = cli("run", "image_folder", "--data-dir", data, "--set", "base=vit_b16", "--set", "image_size=100")
    assert result.exit_code == 2 and "multiple of 16 px" in result.output
    result = cli("run", "image_folder", "--data-dir", data, "--set", "base=resnet50_v2", "--set", "alpha=0.5")
    assert result.exit_code == 2 and "MobileNet width multiplier" in result.output


def test_weights_errors_name_the_bases_that_have_offline_weights(tmp_path, monkeypatch):
    from tl_app.image.weights import build_base, resolve_weights

    monkeypatch.setenv("TL_APP_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(UserError, match=r"convnext_tiny has no offline asset; bases that have one: .*xception"):
        resolve_weights("offline", get("convnext_tiny"))
    with pytest.raises(UserError, match="ImageNet weights exist for 224 px only"):
        resolve_weights("imagenet", get("vit_b16"), image_size=160)
    with pytest.raises(UserError, match=r"weights=auto: resnet50_v2's ImageNet .*, and it has no offline asset. Bases with offline weights"):
        resolve_weights("auto", get("resnet50_v2"), image_size=64)
    # A file saved from another base: the first layer that differs is named.
    path = str(tmp_path / "v3.weights.h5")
    get("mobilenet_v3_small").build(32).save_weights(path)
    backbone = get("mobilenet_v3_large")
    with pytest.raises(UserError, match=r"does not match a no-top mobilenet_v3_large \(alpha 1\): layer '\w+' differs"):
        build_base(resolve_weights(path, backbone, image_size=32), backbone, 1.0, 32)


def test_bases_lists_every_image_base_and_text_encoder_with_weights_here_and_licences(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TL_APP_CACHE", str(tmp_path / "empty_cache"))
    result = cli("bases")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["name", "kind", "params", "input"] and "licence" in lines[0]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(all_backbones()) <= set(rows) and {"minilm_l6", "minilm_l3"} <= set(rows)
    assert "offline (not prepared)" in rows["xception"] and "none stated" in rows["xception"]
    assert "2048" in rows["resnet50_v2"] and "23.6M" in rows["resnet50_v2"]
    detail = cli("bases", "efficientnet_lite2")
    assert detail.exit_code == 0 and "tl-app assets efficientnet_lite2" in detail.output
    assert "Apache-2.0" in detail.output and "block" in detail.output
    unknown = cli("bases", "efficientnet_lite9")
    assert unknown.exit_code == 2 and len(unknown.output.strip().splitlines()) == 1
    listed = cli("assets", "--list")
    assert listed.exit_code == 0 and "licence: none stated" in listed.output and "licence: Apache-2.0" in listed.output


@pytest.mark.real_assets
def test_offline_xception_weights_load_completely_at_several_sizes_and_tell_photos_apart(tmp_path, monkeypatch):
    """The kitchenware package's Xception loads completely at several sizes and its features separate photos."""
    import keras

    from tl_app import assets
    from tl_app.image.weights import build_base, resolve_weights

    monkeypatch.setenv("TL_APP_CACHE", str(tmp_path / "cache"))
    path = assets.prepare("xception")
    assert assets.prepare("xception") == path  # prepared once; a second call keeps the file
    backbone = get("xception")
    resolved = resolve_weights("offline", backbone, image_size=96)
    assert resolved.keras_weights == path and "kitchenware" in resolved.description
    pool = keras.layers.GlobalAveragePooling2D()
    for size in (96, 150):
        base = build_base(resolved, backbone, 1.0, size)
        crops = np.concatenate([photo_crops(8, size, seed=11, photo=0), photo_crops(8, size, seed=12, photo=1)])
        features = pool(base(crops / 127.5 - 1.0, training=False)).numpy()
        labels = np.repeat([0, 1], 8)
        centroids = np.stack([features[labels == k].mean(0) for k in (0, 1)])
        nearest = np.linalg.norm(features[:, None] - centroids[None], axis=-1).argmin(1)
        assert (nearest == labels).mean() == 1.0
        random = build_base(resolve_weights("none", backbone), backbone, 1.0, size)
        assert features.std(0).mean() > 10 * pool(random(crops / 127.5 - 1.0)).numpy().std(0).mean()


def test_a_package_adds_a_base_through_the_entry_point_group_and_a_broken_one_only_warns(monkeypatch, capsys):
    import importlib.metadata

    from tl_app.image.backbones import registry
    from tl_app.image.backbones.keras_application import KerasApplicationBackbone

    plugin = KerasApplicationBackbone(name="plugin_resnet", architecture="ResNet50V2 again", parameters=23_564_800,
                                      feature_size=2048, native_size=224, constructor="ResNet50V2")
    monkeypatch.setattr(__import__(__name__), "PLUGIN_BASE", plugin, raising=False)
    entries = [importlib.metadata.EntryPoint("plugin_resnet", f"{__name__}:PLUGIN_BASE", registry.ENTRY_POINT_GROUP),
               importlib.metadata.EntryPoint("broken_base", "no_such_module_anywhere:BASE", registry.ENTRY_POINT_GROUP)]
    original = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: entries if group == registry.ENTRY_POINT_GROUP else original(group=group))
    monkeypatch.setattr(registry, "_BACKBONES", dict(registry._BACKBONES))
    monkeypatch.setattr(registry, "_LOADED", [])
    assert get("plugin_resnet") is plugin and "broken_base" not in all_backbones()
    assert "backbone 'broken_base'" in capsys.readouterr().err
    recipe = recipe_for("plugin_resnet")
    assert recipe.backbone is plugin
