"""TFLite packages: every mode converts (digits, a tiny MobileNetV2, a tiny BERT), outputs agree with the
SavedModel's on real inputs, re-quantization from an earlier export, the run stage, and each bad input."""
import hashlib
import json
import os
import shutil
import textwrap

import numpy as np
import pytest

from helpers import assert_one_line_error, write_fake_mnist_dir
from test_images import calibrate_batchnorm, photo_crops, write_color_tree
from text_helpers import sentiment_texts, write_text_folder, write_tiny_bert_preset

ALL_FILES = {"float32.tflite", "dynamic.tflite", "float16.tflite", "int8.tflite"}


# ---- builders ---------------------------------------------------------------
def run_recipe(base, recipe, **fields):
    import tl_app

    return tl_app.run(recipe, export_dir=str(base / "saved_models"), logdir=str(base / "runs"), **fields)


def snapshot(directory):
    """Every file under `directory` with its content hash and mtime: a published export must not change."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = (hashlib.sha256(f.read()).hexdigest(),
                                                           os.stat(path).st_mtime_ns)
    return found


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def rows_by_mode(package):
    return {row["mode"]: row for row in read_json(os.path.join(package, "evaluation.json"))["rows"]}


def litert(path):
    from tl_app.export.litert_eval import LiteRTModel

    return LiteRTModel.from_file(path)


def savedmodel_probabilities(export_dir, signature, **inputs):
    import tensorflow as tf

    fn = tf.saved_model.load(export_dir).signatures[signature]
    return fn(**{k: tf.constant(v) for k, v in inputs.items()})["probabilities"].numpy()


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A digits run with `--set tflite=dynamic,int8`: the tflite stage converts the run's export."""
    base = tmp_path_factory.mktemp("digits")
    return base, run_recipe(base, "digits", epochs=8, tflite="dynamic,int8", tflite_calibration_samples=100)


@pytest.fixture(scope="module")
def digits_test_pixels():
    from tl_app import registry

    data = registry.get("digits")(None).load_data()
    return np.stack([x.numpy() for x, _ in data.test])


# ---- a run, and re-quantizing its export later --------------------------------
def test_a_run_with_tflite_set_writes_an_evaluated_package_beside_its_export(digits_run):
    base, result = digits_run
    assert result.tflite_path == str(base / "saved_models" / "digits-tflite" / "1")
    assert set(os.listdir(result.tflite_path)) == {"dynamic.tflite", "int8.tflite", "labels.txt", "input.json",
                                                   "evaluation.json"}
    with open(os.path.join(result.tflite_path, "labels.txt")) as f:
        assert f.read().split() == [str(d) for d in range(10)]
    described = read_json(os.path.join(result.tflite_path, "input.json"))
    (pixels,) = described["models"]["int8"]["inputs"]
    assert pixels["dtype"] == "uint8" and pixels["shape"] == [1, 8, 8]
    assert pixels["quantization"]["zero_point"] == 0 and pixels["quantization"]["scale"] == pytest.approx(16 / 255)
    assert described["value_range"] == [0.0, 16.0] and described["source"] == result.export_path
    rows = rows_by_mode(result.tflite_path)
    assert set(rows) == {"savedmodel", "dynamic", "int8"}
    assert rows["savedmodel"]["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    assert rows["dynamic"]["agreement"] >= 0.98 and rows["int8"]["agreement"] >= 0.95
    assert abs(rows["int8"]["accuracy"] - rows["savedmodel"]["accuracy"]) <= 0.03


def test_every_mode_converts_from_an_earlier_export_without_touching_it(digits_run, digits_test_pixels, cli):
    base, result = digits_run
    before = snapshot(result.export_path)
    out = cli("tflite", str(base / "saved_models" / "digits"), "--quantize", "all", "--latency-runs", "3")
    assert out.exit_code == 0, out.output
    package = str(base / "saved_models" / "digits-tflite" / "2")  # a new version: version 1 is kept as it was
    assert ALL_FILES <= set(os.listdir(package)) and os.path.isdir(result.tflite_path)
    assert f"TFLite models in {package} (from {result.export_path})" in out.output
    for mode in ("SavedModel", "none", "dynamic", "float16", "int8"):
        assert f"\n  {mode} " in out.output
    assert snapshot(result.export_path) == before
    assert not [p for p in os.listdir(base / "saved_models" / "digits-tflite") if p.startswith(".tmp")]
    # The float model computes what the SavedModel computes, on the real test digits.
    expected = savedmodel_probabilities(result.export_path, "serving_default", pixels=digits_test_pixels)
    float32 = litert(os.path.join(package, "float32.tflite"))
    got = np.concatenate([float32.predict({"pixels": x[None]}) for x in digits_test_pixels])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    rows = rows_by_mode(package)
    assert rows["none"]["agreement"] == 1.0
    for mode in ("dynamic", "float16"):
        assert rows[mode]["agreement"] >= 0.98
        assert abs(rows[mode]["accuracy"] - rows["savedmodel"]["accuracy"]) <= 0.01
    assert rows["dynamic"]["size_bytes"] < 0.5 * rows["none"]["size_bytes"]
    assert rows["float16"]["size_bytes"] < 0.7 * rows["none"]["size_bytes"]


# ---- images -----------------------------------------------------------------
def export_untrained(recipe, base):
    """Export `recipe`'s freshly built model as a run would (config, labels, Keras weights, extra files).

    Conversion and agreement need real inputs and a model that tells them apart, not a trained one.
    """
    from tl_app import config as config_lib
    from tl_app.export import savedmodel

    data = recipe.load_data()
    model = recipe.build_model(data)
    path = savedmodel.export_model(
        model, recipe.serving_signatures(model, data.class_names), str(base / "saved_models" / recipe.name),
        data.class_names, {"recipe": recipe.name, **config_lib.to_dict(recipe.config)}, {}, keras_weights=True,
        extra_files=recipe.export_files(model))
    return recipe, data, model, path


def make_recipe(name, **values):
    from tl_app import api, registry

    cls = registry.get(name)
    return cls(api.resolve_config(cls, values=values))


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    """image_folder's tiny MobileNetV2 (alpha 0.35, 32 px; BN statistics from real photos), exported."""
    import keras

    base = tmp_path_factory.mktemp("images")
    mobilenet = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    calibrate_batchnorm(mobilenet, photo_crops(64, 32))
    weights = str(base / "calibrated.weights.h5")
    mobilenet.save_weights(weights)
    tree = write_color_tree(str(base / "colors"), per_class=8)
    return export_untrained(make_recipe("image_folder", data_dir=tree, alpha=0.35, image_size=32, weights=weights),
                            base)[3]


def test_image_models_decode_outside_and_int8_takes_uint8_pixels_as_they_are(image_export):
    from tl_app.api import recipe_of_export
    from tl_app.export.tflite_package import write_tflite_package

    package = write_tflite_package(image_export, ["none", "int8"], recipe_of_export(image_export), latency_runs=3).path
    assert {"float32.tflite", "int8.tflite"} <= set(os.listdir(package))
    described = read_json(os.path.join(package, "input.json"))
    assert described["signature"] == "serving_resized_images" and "decode" in described["client"]
    (float_input,) = described["models"]["none"]["inputs"]
    assert float_input == {"name": "images", "shape": [1, 32, 32, 3], "dtype": "float32"}
    (pixels,) = described["models"]["int8"]["inputs"]
    assert pixels["dtype"] == "uint8" and pixels["quantization"]["scale"] == 1.0
    assert pixels["quantization"]["zero_point"] == 0
    # Real photos, decoded and resized outside: the float model equals the whole SavedModel (serving_images).
    crops = photo_crops(12, 32, seed=3)
    expected = savedmodel_probabilities(image_export, "serving_images", images=crops)
    float32 = litert(os.path.join(package, "float32.tflite"))
    got = np.concatenate([float32.predict({"images": crop[None]}) for crop in crops])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    int8 = litert(os.path.join(package, "int8.tflite"))
    as_uint8 = int8.run({"images": crops[:1].round().astype(np.uint8)})["probabilities"]
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == (1, 3)
    rows = rows_by_mode(package)
    assert set(rows) == {"savedmodel", "none", "int8"} and rows["none"]["agreement"] == 1.0
    assert rows["int8"]["size_bytes"] < 0.5 * rows["none"]["size_bytes"]


def int8_bytes(model, images):
    """`model` converted as `tl-app tflite --quantize int8` converts (uint8 in and out, per-channel weights)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    return converter.convert()


def test_int8_layers_with_alike_channel_scales_get_one_scale_and_answer_the_same(tmp_path):
    import keras

    from tl_app.export.tflite_granularity import per_tensor_where_alike

    rng = np.random.default_rng(0)
    inputs = keras.Input((8, 8, 3), name="images")
    x = keras.layers.Conv2D(16, 3, activation="relu", name="alike")(inputs)
    x = keras.layers.Conv2D(16, 1, activation="relu", name="spread")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    for name, spread in (("alike", 0), ("spread", 0.5)):  # channel c's filter spans 2 ** (spread * c) times the first's
        kernel, bias = model.get_layer(name).get_weights()
        model.get_layer(name).set_weights([rng.normal(0, 0.2, kernel.shape) * 2.0 ** (spread * (np.arange(16) - 8)),
                                           rng.normal(0, 0.1, bias.shape)])
    images = rng.uniform(0, 1, (48, 8, 8, 3)).astype(np.float32)
    per_channel = int8_bytes(model, images)
    merged_bytes, merged = per_tensor_where_alike(per_channel)
    names = {layer.name.split("/")[1].split("_")[0]: layer for layer in merged}
    assert set(names) == {"alike", "head"}  # spread's channels would lose 3.75 bits on average: kept per channel
    assert names["alike"].channels == 16 and names["alike"].mean_bits_lost <= 1.0
    # Per channel, the weights' and the bias's float32 scale and int64 zero point go (24 bytes, one per layer
    # stays); the rewritten flatbuffer aligns its vectors a little differently.
    assert len(per_channel) - len(merged_bytes) >= 0.8 * 24 * (16 + 4 - 2)
    expected = model.predict(images, verbose=0)
    errors = {}
    for name, content in (("per_channel", per_channel), ("merged", merged_bytes)):
        (tmp_path / f"{name}.tflite").write_bytes(content)
        converted = litert(str(tmp_path / f"{name}.tflite"))
        (input_name,) = converted.inputs
        got = np.concatenate([converted.predict({input_name: image[None]}) for image in images])
        errors[name] = np.abs(got - expected).max()
        assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9, name
    # One scale for those layers costs at most a few uint8 steps (1/256) more than the per-channel model's error.
    assert errors["merged"] <= errors["per_channel"] + 3 / 256, errors


# ---- text ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    """text_folder with a tiny BERT (2 layers, 32 hidden), exported as a run exports it."""
    base = tmp_path_factory.mktemp("text")
    preset = write_tiny_bert_preset(base / "tiny_bert")
    tree = write_text_folder(base / "texts", n_per_class=20)
    recipe = make_recipe("text_folder", data_dir=tree, preset=preset, sequence_length=16, pooling="mean")
    return base, export_untrained(recipe, base)


TEXTS = sentiment_texts(10, seed=7)[0] + ["", "Ünïcödé wörds, the GOOD and the bad!",
                                          " ".join(["the movie was very good"] * 10)]


def test_text_token_id_models_match_the_savedmodel_on_raw_texts(text_export, cli):
    from tl_app.text.serving import TOKEN_INPUTS, tokenizer_from_files

    base, (_, _, _, export_dir) = text_export
    out = cli("tflite", export_dir, "--latency-runs", "3")
    assert out.exit_code == 0, out.output
    package = str(base / "saved_models" / "text_folder-tflite" / "1")
    assert ALL_FILES | {"vocab.txt", "tokenizer.json"} <= set(os.listdir(package))
    files = {}
    for name in ("vocab.txt", "tokenizer.json"):
        with open(os.path.join(package, name), "rb") as f, open(os.path.join(export_dir, "assets.extra", name),
                                                                   "rb") as g:
            files[name] = f.read()
            assert files[name] == g.read()
    packed = tokenizer_from_files(files)(np.asarray(TEXTS, dtype=object))
    ids = {name: np.asarray(packed[name]).astype(np.int32) for name in TOKEN_INPUTS}
    # The SavedModel tokenizes in its graph; LiteRT gets ids from the shipped vocab.txt + tokenizer.json.
    expected = savedmodel_probabilities(export_dir, "serving_default", text=np.asarray(TEXTS, dtype=object))
    for mode, atol in (("float32", 1e-5), ("float16", 1e-2), ("dynamic", 5e-2), ("int8", 0.1)):
        model = litert(os.path.join(package, f"{mode}.tflite"))
        got = np.concatenate([model.predict({k: v[i:i + 1] for k, v in ids.items()}) for i in range(len(TEXTS))])
        np.testing.assert_allclose(got, expected, atol=atol, err_msg=mode)
    described = read_json(os.path.join(package, "input.json"))
    assert described["signature"] == "serving_token_ids"
    int8_inputs = described["models"]["int8"]["inputs"]
    assert {entry["name"]: entry["dtype"] for entry in int8_inputs} == {name: "int32" for name in TOKEN_INPUTS}
    assert read_json(os.path.join(package, "tokenizer.json"))["sequence_length"] == 16
    assert rows_by_mode(package)["none"]["agreement"] == 1.0


def test_a_text_export_without_the_token_id_signature_is_rebuilt_from_its_weights(text_export, cli):
    """Exports written before serving_token_ids existed: the model is rebuilt from its Keras weights and config."""
    from tl_app.export import savedmodel

    base, (recipe, data, model, export_dir) = text_export
    old = savedmodel.export_model(
        model, {"serving_default": recipe.serving_signatures(model, data.class_names)["serving_default"]},
        str(base / "old" / "text_folder"), data.class_names,
        read_json(os.path.join(export_dir, "assets.extra", "config.json")), {}, keras_weights=True)
    out = cli("tflite", old, "--quantize", "none", "--latency-runs", "2")
    assert out.exit_code == 0, out.output
    assert "has no 'serving_token_ids' signature (exported before it existed): rebuilding" in out.output
    package = str(base / "old" / "text_folder-tflite" / "1")
    assert {"vocab.txt", "tokenizer.json", "float32.tflite"} <= set(os.listdir(package))
    assert rows_by_mode(package)["none"]["agreement"] == 1.0


# ---- bad input ----------------------------------------------------------------
def test_paths_that_are_not_exports_fail_with_one_line(digits_run, cli, tmp_path):
    base, result = digits_run
    assert_one_line_error(cli("tflite", str(tmp_path / "missing")), "no such directory", "saved_models/<model>/<N>")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("tflite", str(tmp_path / "empty")), "not an export (no saved_model.pb")
    assert_one_line_error(cli("tflite", result.tflite_path), "holds TFLite models, not a SavedModel export")
    bare = tmp_path / "bare" / "1"
    shutil.copytree(result.export_path, bare)
    os.remove(bare / "assets.extra" / "config.json")
    assert_one_line_error(cli("tflite", str(bare)), "not one tl_app exported")


def test_unknown_modes_and_contradictions_fail_before_any_work(digits_run, cli, workdir):
    _, result = digits_run
    assert_one_line_error(cli("tflite", result.export_path, "--quantize", "int4"),
                          "--quantize int4: unknown quantization mode 'int4'", "none, dynamic, float16, int8 or all")
    assert_one_line_error(cli("tflite", result.export_path, "--calibration-samples", "0"), "--calibration-samples 0")
    assert_one_line_error(cli("run", "digits", "--set", "tflite=dynamic,int4"),
                          "tflite=dynamic,int4: unknown quantization mode 'int4'")
    assert_one_line_error(cli("run", "digits", "--no-export", "--set", "tflite=int8"), "drop --no-export")
    assert not (workdir / "runs").exists()  # nothing trained


def test_int8_without_its_training_data_names_data_dir(cli, tmp_path):
    idx = write_fake_mnist_dir(str(tmp_path / "idx"), n_train=120, n_test=40)
    result = run_recipe(tmp_path, "fashion_mnist", data_dir=idx, epochs=1)
    moved = shutil.move(idx, str(tmp_path / "moved"))
    assert_one_line_error(cli("tflite", result.export_path, "--quantize", "int8"),
                          "--quantize int8 calibrates on the recipe's training data", "--data-dir")
    assert_one_line_error(cli("tflite", result.export_path, "--quantize", "dynamic"), "--data-dir", "--no-evaluate")
    convert_only = cli("tflite", result.export_path, "--quantize", "dynamic", "--no-evaluate")
    assert convert_only.exit_code == 0, convert_only.output
    found = cli("tflite", result.export_path, "--quantize", "int8", "--data-dir", moved, "--latency-runs", "2")
    assert found.exit_code == 0, found.output
    assert "int8: calibrating on 108 training examples" in found.output  # 120 less the validation tenth


CSV_RECIPE = '''
    """Digits served from comma-separated text: a signature TFLite cannot convert."""
    from tl_app.recipes.digits import Digits


    class CsvDigits(Digits):
        """digits, but serving_default takes the 64 pixels as one comma-separated string."""

        def serving_signatures(self, model, class_names):
            import tensorflow as tf

            from tl_app.export.signatures import classification_signature

            def parse(text):
                return tf.reshape(tf.strings.to_number(tf.strings.split(text, ",").to_tensor(shape=[None, 64])),
                                  [-1, 8, 8])

            return {"serving_default": classification_signature(
                model, class_names, tf.TensorSpec([None], tf.string, name="csv"), preprocess=parse)}
'''


def test_a_signature_with_ops_tflite_lacks_names_them(cli, tmp_path):
    recipe_file = tmp_path / "csv_digits.py"
    recipe_file.write_text(textwrap.dedent(CSV_RECIPE))
    result = run_recipe(tmp_path, str(recipe_file), epochs=1)
    line = assert_one_line_error(cli("tflite", result.export_path, "--quantize", "dynamic"),
                                 "signature 'serving_default' cannot be converted to TFLite", "StringToNumber",
                                 "no TFLite kernel", "docs/tflite.md")
    assert "Traceback" not in line
    assert not (tmp_path / "saved_models" / "csv_digits-tflite").exists()  # no version, no temporary directory
