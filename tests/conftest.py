"""Shared fixtures. Tests run offline: no tfds download probe, no hub access."""
import os

import pytest

os.environ["TL_APP_OFFLINE"] = "1"  # never wait on DNS in tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a fresh directory so runs/ and saved_models/ land in tmp."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli():
    """Invoke `tl-app` in-process: returns (exit_code, stdout, stderr)."""
    from tl_app.cli import main

    def invoke(*args):
        import io
        import contextlib

        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue(), err.getvalue()

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
