"""Features kept on disk across runs: found only for the same extractor and data, never partial or wrong."""
import os

import numpy as np
import pytest

from tl_app.engine import features as train
from tl_app.engine.feature_store import FeatureStore, extractor_digest, split_key


def extractor(seed=0, units=4):
    """A small functional extractor (auto-named layers, as a user model would have)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(3,))
    return keras.Model(inputs, keras.layers.Dense(units, activation="relu")(keras.layers.Dense(8)(inputs)))


def dataset(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 3)).astype(np.float32), np.arange(20) % 3


@pytest.fixture
def counting(monkeypatch):
    """Counts calls of the real extraction."""
    calls = []
    real = train.extract_features

    def extract(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "extract_features", extract)
    return calls


def test_a_rebuilt_extractor_on_the_same_data_reuses_the_kept_features(tmp_path, data, counting, capsys):
    first = train.cached_features(extractor(), dataset(*data), 8, FeatureStore(str(tmp_path)))
    # A later run: new store object, extractor rebuilt (its auto-generated layer names differ).
    again = train.cached_features(extractor(), dataset(*data), 8, FeatureStore(str(tmp_path)))
    assert len(counting) == 1
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    out = capsys.readouterr().out
    assert "kept 20 feature vectors" in out and "reused 20 feature vectors" in out
    assert [p for p in os.listdir(tmp_path) if not p.endswith(".npz")] == []  # no temporary files left


@pytest.mark.parametrize("change", ["pixel", "label", "order", "weight", "architecture"])
def test_any_change_to_data_or_extractor_is_a_new_key(data, change):
    x, y = data
    model = extractor()
    base_key = split_key(extractor_digest(model), dataset(x, y))
    x2, y2 = x.copy(), y.copy()
    if change == "pixel":
        x2[7, 1] += 1e-3
    elif change == "label":
        y2[3] = (y2[3] + 1) % 3
    elif change == "order":
        x2, y2 = x2[::-1].copy(), y2[::-1].copy()
    elif change == "weight":
        kernel = model.layers[1].kernel
        kernel.assign(kernel.numpy() + 1e-6)
    else:
        model = extractor(units=5)
    assert split_key(extractor_digest(model), dataset(x2, y2)) != base_key


def test_string_inputs_are_keyed_by_their_exact_text():
    import tensorflow as tf

    digest = extractor_digest(extractor())
    key = lambda texts: split_key(digest, tf.data.Dataset.from_tensor_slices((texts, [0, 1])))  # noqa: E731
    assert key(["ab", "c"]) != key(["a", "bc"]) and key(["ab", "c"]) == key(["ab", "c"])


def test_a_damaged_entry_is_recomputed_with_a_warning(tmp_path, data, counting, capsys):
    store = FeatureStore(str(tmp_path))
    train.cached_features(extractor(), dataset(*data), 8, store)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a full disk
    features, _ = train.cached_features(extractor(), dataset(*data), 8, FeatureStore(str(tmp_path)))
    assert len(counting) == 2 and features.shape == (20, 4)
    assert "unreadable" in capsys.readouterr().err
    assert FeatureStore(str(tmp_path)).load(entry.stem) is not None  # rewritten whole


def test_an_unwritable_store_warns_and_the_run_goes_on(tmp_path, data, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the store directory would be")
    features, labels = train.cached_features(extractor(), dataset(*data), 8, FeatureStore(str(blocker / "features")))
    assert features.shape == (20, 4) and len(labels) == 20
    assert "could not keep the features" in capsys.readouterr().err
    assert blocker.read_text().startswith("a file")  # nothing overwritten


def test_another_batch_size_finds_the_same_features(tmp_path, data, counting):
    train.cached_features(extractor(), dataset(*data), 8, FeatureStore(str(tmp_path)))
    train.cached_features(extractor(), dataset(*data), 5, FeatureStore(str(tmp_path)))
    assert len(counting) == 1


def test_bfloat16_features_are_kept_as_float32_and_read_back(tmp_path):
    import tensorflow as tf

    features = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4).astype(tf.bfloat16.as_numpy_dtype)
    store = FeatureStore(str(tmp_path))
    store.save("k", features, np.arange(3))
    loaded, labels = store.load("k")
    assert loaded.dtype == np.float32 and np.array_equal(loaded, features.astype(np.float32))


def test_an_entry_numpy_cannot_read_as_floats_is_a_miss(tmp_path, capsys):
    np.savez(tmp_path / "k.npz", features=np.zeros((2, 3), np.int8), labels=np.arange(2))
    assert FeatureStore(str(tmp_path)).load("k") is None
    assert "unreadable" in capsys.readouterr().err
