"""Versioned exports: TF Serving layout, signature outputs, fresh-process reload, no overwrite."""
import json
import os

import numpy as np
import pytest

from helpers import NO_KERAS_PRELUDE, run_python
from tl_app.export import savedmodel as export
from tl_app.errors import UserError


@pytest.fixture(scope="module")
def trained_digits():
    """A digits model trained for a few epochs, with its recipe and data."""
    import keras

    from tl_app import registry
    from tl_app.engine.trainer import Trainer

    recipe = registry.get("digits")(None)
    recipe.config.epochs = 5
    keras.utils.set_random_seed(0)
    data = recipe.load_data()
    model = recipe.build_model(data)
    Trainer(recipe, data, model, callbacks=[]).run_all()
    return recipe, data, model


def _export(recipe, data, model, base):
    return export.export_model(
        model, recipe.serving_signatures(model, data.class_names), os.path.join(base, recipe.name),
        data.class_names, {"recipe": recipe.name, "epochs": recipe.config.epochs}, {"accuracy": 0.5, "loss": 1.0},
    )


def test_export_reloads_in_a_fresh_process_with_only_tensorflow(trained_digits, tmp_path):
    recipe, data, model = trained_digits
    path = _export(recipe, data, model, str(tmp_path))
    pixels = np.stack([x.numpy() for x, _ in data.test.take(8)])
    expected = model.predict(pixels, verbose=0)
    np.save(tmp_path / "pixels.npy", pixels)
    code = NO_KERAS_PRELUDE + f"""
import json
import numpy as np
loaded = tf.saved_model.load({path!r})
fn = loaded.signatures["serving_default"]
out = fn(pixels=tf.constant(np.load({str(tmp_path / 'pixels.npy')!r})))
print(json.dumps({{k: v.numpy().tolist() if v.dtype != tf.string else [s.decode() for s in v.numpy()]
                  for k, v in out.items()}}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) == {"probabilities", "class_id", "class_name"}
    np.testing.assert_allclose(np.array(out["probabilities"]), expected, rtol=1e-5, atol=1e-6)
    assert out["class_id"] == expected.argmax(-1).tolist()
    assert out["class_name"] == [data.class_names[i] for i in expected.argmax(-1)]


def test_signature_contract(trained_digits, tmp_path):
    import tensorflow as tf

    recipe, data, model = trained_digits
    loaded = tf.saved_model.load(_export(recipe, data, model, str(tmp_path)))
    sig = loaded.signatures["serving_default"]
    (name, spec), = sig.structured_input_signature[1].items()
    assert name == "pixels" and spec.dtype == tf.float32 and spec.shape.as_list() == [None, 8, 8]
    outputs = sig.structured_outputs
    assert outputs["probabilities"].dtype == tf.float32 and outputs["probabilities"].shape.as_list() == [None, 10]
    assert outputs["class_id"].dtype == tf.int64 and outputs["class_name"].dtype == tf.string


def test_versions_count_up_and_never_overwrite(trained_digits, tmp_path):
    recipe, data, model = trained_digits
    first = _export(recipe, data, model, str(tmp_path))
    assert first.endswith(os.path.join("digits", "1"))
    before = (tmp_path / "digits" / "1" / "saved_model.pb").read_bytes()
    stamp = os.stat(os.path.join(first, "saved_model.pb")).st_mtime_ns
    second = _export(recipe, data, model, str(tmp_path))
    assert second.endswith(os.path.join("digits", "2"))
    assert (tmp_path / "digits" / "1" / "saved_model.pb").read_bytes() == before
    assert os.stat(os.path.join(first, "saved_model.pb")).st_mtime_ns == stamp
    (tmp_path / "digits" / "7").mkdir()  # a gap, and a non-version directory, are respected/ignored
    (tmp_path / "digits" / "notes").mkdir()
    assert _export(recipe, data, model, str(tmp_path)).endswith(os.path.join("digits", "8"))
    assert export.versions(str(tmp_path / "digits")) == [1, 2, 7, 8]
    # nothing but version directories (and the lock) is left: no temporary directories
    leftovers = {p.name for p in (tmp_path / "digits").iterdir()} - {"1", "2", "7", "8", "notes", ".export.lock"}
    assert leftovers == set()


def test_failed_export_leaves_no_version_and_no_temp_dir(trained_digits, tmp_path):
    recipe, data, model = trained_digits

    def broken(inputs):
        raise RuntimeError("boom")

    sigs = {"serving_default": export.ServingSignature(fn=broken, input_signature=recipe.serving_signatures(
        model, data.class_names)["serving_default"].input_signature)}
    with pytest.raises(Exception, match="boom"):
        export.export_model(model, sigs, str(tmp_path / "digits"), data.class_names, {}, {})
    assert export.versions(str(tmp_path / "digits")) == []
    assert [p.name for p in (tmp_path / "digits").iterdir() if p.name.startswith(".tmp")] == []


def test_export_dir_check_rejects_unwritable_places(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        export.check_export_dir(str(tmp_path / "file"))
    with pytest.raises(UserError, match="cannot write there"):
        export.check_export_dir(str(tmp_path / "file" / "below"))
    export.check_export_dir(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()
