"""Small builders the tests share: idx files, fresh-process runners."""
import gzip
import os
import subprocess
import sys

import numpy as np


def write_two_colours(root, train=15, test=3):
    """root/train/ and root/test/ class folders of noisy red and blue 24 px PNG squares; returns root."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            folder = os.path.join(root, split, name)
            os.makedirs(folder)
            for i in range(n):
                pixels = np.clip(rng.normal(0, 20, (24, 24, 3)) + colour, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.png"))
    return root


def write_idx(path, array):
    """Write `array` (uint8) as a gzipped idx file, the MNIST distribution format."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fake_mnist_dir(folder, n_train=200, n_test=50, seed=0):
    """Four idx files of learnable 28x28 data: class k has a bright block in row band k."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k : 2 * k + 4, :] = 250
        return images, labels

    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = make(n)
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return folder


# Prepend to fresh-process code that must prove an export needs no Keras: `import tensorflow`
# itself loads parts of keras, so keras cannot be blocked before it; after it, any further
# keras / keras_hub import (as loading a Keras-dependent SavedModel would do) raises.
NO_KERAS_PRELUDE = """
import sys
import tensorflow as tf
class _BlockKeras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "keras_hub", "keras_nlp", "tf_keras"):
            raise ImportError("this process must not import " + name)
sys.meta_path.insert(0, _BlockKeras())
"""


# Prepend to a script that then runs `tl_app.cli.main`: with KILL_AT=epoch:batch in the environment,
# the process SIGKILLs itself at that batch (a kill at any moment, for resume tests).
KILL_AT_PRELUDE = """
import os, signal
import keras
from tl_app.engine import trainer as _train
if os.environ.get("KILL_AT"):
    from tl_app.engine.resume_callbacks import flush_tensorboard
    _kill_epoch, _kill_batch = map(int, os.environ["KILL_AT"].split(":"))
    class KillAt(keras.callbacks.Callback):
        def __init__(self, logged_by):
            super().__init__()
            self.logged_by = logged_by
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == _kill_epoch and batch == _kill_batch:
                os.kill(os.getpid(), signal.SIGKILL)
        def on_epoch_end(self, epoch, logs=None):
            if epoch == _kill_epoch and _kill_batch == -1:
                flush_tensorboard(self.logged_by)  # the epoch is on disk, its checkpoint is not
                os.kill(os.getpid(), signal.SIGKILL)
    _standard = _train.standard_callbacks
    _train.standard_callbacks = lambda run_dir: (lambda logged: logged + [KillAt(logged)])(_standard(run_dir))
"""


def run_python(code, timeout=120, env_extra=None):
    """Run `code` in a fresh Python process; returns CompletedProcess (text)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)


def run_tl_app(args, cwd, timeout=120, env_extra=None):
    """Run the installed `tl-app` console script in a fresh process."""
    env = dict(os.environ, **(env_extra or {}))
    exe = os.path.join(os.path.dirname(sys.executable), "tl-app")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def model_with_hidden_head(recipe, export_path, units):
    """The recipe's model built again, its head's hidden layer checked (named, `units` wide, the very layer the
    feature cache's head trains), carrying the export's Keras weights."""
    from tl_app.export import savedmodel

    model = recipe.build_model(recipe.load_data())
    assert [layer.name for layer in model.layers][-3:] == ["head_hidden", "head_dropout", "probabilities"]
    assert model.get_layer("head_hidden").units == units
    assert recipe._classifier.head.get_layer("head_hidden") is model.get_layer("head_hidden")  # the cache trains it
    model.load_weights(savedmodel.keras_weights_path(export_path))  # the export holds the hidden layer's weights
    return model


def assert_one_line_error(result, *fragments):
    """A click Result of a user's mistake: exit 2, one `error:` line holding every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
