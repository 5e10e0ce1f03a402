"""Shared fixtures. Tests run offline: no tfds download probe, no hub access."""
import os

import pytest

os.environ["TL_APP_OFFLINE"] = "1"  # never wait on DNS in tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Every run would start a serving-check server process; tests/test_serve_check.py turns it on where it is tested.
os.environ["TL_APP_SERVING_CHECK"] = "0"


@pytest.fixture(scope="session", autouse=True)
def session_feature_store(tmp_path_factory):
    """Module-scoped fixtures run before each test's own store is set: theirs is under tmp too, never ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TL_APP_FEATURE_CACHE", str(tmp_path_factory.mktemp("module_features")))
        yield


@pytest.fixture(autouse=True)
def feature_store_dir(tmp_path_factory, monkeypatch):
    """Each test its own feature store: a test finds kept features only when it kept them itself."""
    path = tmp_path_factory.mktemp("features")
    monkeypatch.setenv("TL_APP_FEATURE_CACHE", str(path))
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a fresh directory so runs/ and saved_models/ land in tmp."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli():
    """Invoke `tl-app ARGS...` with click's test runner; returns the click Result."""
    from click.testing import CliRunner

    from tl_app.cli import cli as group

    def invoke(*args):
        return CliRunner().invoke(group, list(args), prog_name="tl-app")

    return invoke


@pytest.fixture
def tfds_mock(monkeypatch):
    """`tfds.testing.mock_data` with the data set treated as prepared (no download attempted)."""
    import tensorflow_datasets as tfds

    from tl_app.data import tfds_source

    monkeypatch.setattr(tfds_source, "is_prepared", lambda builder: True)

    def mock(num_examples=64):
        return tfds.testing.mock_data(num_examples=num_examples)

    return mock
