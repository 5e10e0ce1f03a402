"""Builders the serving tests share: tiny real exports of the three families and a `tl-app serve` process."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np

READY = re.compile(r"REST http://[^:]+:(\d+)/.*gRPC [^ ]+:(\d+)")


def build_exports(base, tmp_path_factory):
    """Exports of the three families under `base`: {model name: export directory}.

    `digits` is a real run (training, warmup from validation data, models.config). The image and text
    exports skip training (which these tests do not need, and which a MobileNetV2 export would make cost
    tens of seconds): the families' own `serving_signatures` and `serving_examples` over a tiny Keras
    image model (bytes decoded and resized in the graph) and a tiny random BERT (tokenizer in the graph),
    written by `savedmodel.export_model` with real images and texts as warmup requests.
    """
    import tl_app
    from test_images import COLORS, photo_crops
    from text_helpers import sentiment_texts, write_tiny_bert_preset

    common = {"export_dir": str(base), "logdir": str(tmp_path_factory.mktemp("runs")), "serving_check": False,
              "strategy": "one_device"}
    exports = {"digits": tl_app.run("digits", epochs=2, **common).export_path}
    image_folder = _recipe("image_folder", image_size=32)
    exports["image_folder"] = _export(base, image_folder, tiny_image_model(len(COLORS)), sorted(COLORS),
                                      photo_crops(4, 32, seed=1))
    text_folder = _recipe("text_folder", preset=write_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert")),
                          sequence_length=16, pooling="mean")
    model = text_folder.build_model(_classes(["negative", "positive"]))
    texts, _ = sentiment_texts(4, seed=1)
    exports["text_folder"] = _export(base, text_folder, model, ["negative", "positive"],
                                     np.array([t.encode() for t in texts], dtype=object))
    return exports


def tiny_image_model(classes, seed=0):
    """Float images of any size -> resized to 32 px -> a small conv net -> softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(None, None, 3), dtype="float32")
    x = keras.layers.Resizing(32, 32)(inputs)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


def _recipe(name, **fields):
    from tl_app import api

    cls = api.recipe_class(name)
    return cls(api.resolve_config(cls, values=fields))


def _classes(names):
    from tl_app.recipe import DataSplits

    return DataSplits(train=None, validation=None, test=None, class_names=list(names))


def _export(base, recipe, model, class_names, examples):
    from tl_app.export import models_config, savedmodel, warmup

    inputs = recipe.serving_examples(np.asarray(examples))
    path = savedmodel.export_model(
        model, recipe.serving_signatures(model, class_names), os.path.join(str(base), recipe.name), class_names,
        {"recipe": recipe.name}, {}, before_publish=[lambda tmp: warmup.write_warmup_file(tmp, inputs, recipe.name)])
    models_config.update(str(base))
    return path


def in_process(export_dir, inputs, signature="serving_default"):
    """The export's signature run in this process (the reference every served answer must equal)."""
    import tensorflow as tf

    from tl_app.serve.servable import load_custom_ops

    load_custom_ops()
    loaded = _loaded.get(export_dir)
    if loaded is None:
        loaded = _loaded[export_dir] = tf.saved_model.load(export_dir)
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


_loaded = {}


class ServerProcess:
    """`tl-app serve ARGS` on free 127.0.0.1 ports; its output is collected; `stop()` sends SIGTERM."""

    def __init__(self, *args, cwd=None, timeout=180):
        import tensorflow  # noqa: F401  (numerics_env reads this process's oneDNN setting)

        from tl_app.serve.check import numerics_env

        exe = os.path.join(os.path.dirname(sys.executable), "tl-app")
        self.lines = []
        self.process = subprocess.Popen([exe, "serve", *args, "--rest-port", "0", "--grpc-port", "0"], cwd=cwd,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **numerics_env()))
        self._ready = threading.Event()
        self.rest_port = self.grpc_port = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or self.rest_port is None:
            self.stop()
            raise RuntimeError("tl-app serve did not start:\n" + "\n".join(self.lines[-20:]))

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            match = READY.search(line)
            if match and self.rest_port is None:
                self.rest_port, self.grpc_port = int(match.group(1)), int(match.group(2))
                self._ready.set()
        self._ready.set()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.rest_port}"

    def output(self):
        return "\n".join(self.lines)

    def stop(self, timeout=30):
        """SIGTERM, then the exit code (SIGKILL after `timeout`)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_for(predicate, timeout=120, interval=0.1):
    """Poll `predicate()` until it returns a true value (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


def states(client, name):
    """{version: state} of a model on a server (empty when it has none)."""
    from tl_app.serve.client import RestError

    try:
        return {int(v["version"]): v["state"] for v in client.status(name)["model_version_status"]}
    except (RestError, OSError):
        return {}


def digits_pixels(n=3, seed=0):
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32)
    return images[np.random.default_rng(seed).choice(len(images), n, replace=False)]
