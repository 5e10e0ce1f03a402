"""Silence TensorFlow's start-up noise (CUDA probes, oneDNN notices) for the CLI.

TF logs from C++ before absl logging is initialised, straight to file
descriptor 2, so environment variables alone do not catch every line: the
import itself runs with fd 2 pointed at /dev/null. Warnings raised later (and
real errors) still reach stderr.
"""
import contextlib
import os
import sys


def set_quiet_environment():
    """Quiet defaults a user can still override by setting the variables."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def stderr_silenced():
    """Point fd 2 at /dev/null for the duration (C++ logging bypasses sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly():
    """Import TensorFlow (and Keras) with the start-up noise suppressed."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    set_quiet_environment()
    with stderr_silenced():
        import tensorflow as tf
        import keras  # noqa: F401  (its import also touches the backend)
    tf.get_logger().setLevel("ERROR")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    return tf
