"""Framework overhead: seconds per epoch of `tl-app run` against a plain Keras script.

Both sides train the same model on the same data with the same batch size, in
separate fresh processes, one after the other, `--repeats` times each. An
epoch's time is the time between consecutive epoch ends (training plus
validation), the first epoch (tracing) excluded; the median is reported.
tl-app's epoch ends are read from the TensorBoard event files of the run, so
the real `tl-app run` path is measured, callbacks and all.

    python benchmarks/overhead.py --data-dir /usr/share/datasets/fashion-mnist
    python benchmarks/overhead.py --case all     # also the image and text cases

Cases: `mlp` (this file: target ratio tl-app/plain <= 1.05), `image`
(benchmarks/image_overhead.py: MobileNetV2 head-phase epoch time against a
plain Keras script, same model and input pipeline, no caching; target <= 1.05),
`text` (benchmarks/text_overhead.py: training sequences/s against a plain
keras-hub TextClassifier.fit, target ratio >= 0.95, plus the bfloat16 speed-up,
target >= 1.3x). Each case runs in its own processes.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
TRAIN_EXAMPLES = 54_000  # 60k less the 10% validation both sides carve (validation_split / validation_fraction)

PLAIN_KERAS = r"""
import gzip, json, sys, time
import numpy as np
import keras

data_dir, epochs, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def idx(name):
    raw = gzip.open(f"{data_dir}/{name}").read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)

x, y = idx("train-images-idx3-ubyte.gz").astype("float32"), idx("train-labels-idx1-ubyte.gz").astype("int64")
keras.utils.set_random_seed(42)
model = keras.Sequential([
    keras.Input((28, 28)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
    keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
ends = []
class Ends(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        ends.append(time.time())
model.fit(x, y, batch_size=batch, epochs=epochs, validation_split=0.1, callbacks=[Ends()], verbose=0)
print(json.dumps(ends))
"""


def plain_keras_epoch_ends(data_dir, epochs, batch):
    out = subprocess.run([sys.executable, "-c", PLAIN_KERAS, data_dir, str(epochs), str(batch)],
                         capture_output=True, text=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return json.loads(out.stdout.strip().splitlines()[-1])


def tl_app_epoch_ends(data_dir, epochs, batch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with tempfile.TemporaryDirectory() as tmp:
        tl_app = os.path.join(os.path.dirname(sys.executable), "tl-app")
        subprocess.run([tl_app, "run", "fashion_mnist", "--data-dir", data_dir, "--epochs", str(epochs),
                        "--batch-size", str(batch), "--no-export", "--logdir", tmp],
                       capture_output=True, text=True, check=True)
        (run_dir,) = glob.glob(os.path.join(tmp, "fashion_mnist", "*"))
        acc = EventAccumulator(os.path.join(run_dir, "train"))
        acc.Reload()
        return [event.wall_time for event in acc.Tensors("epoch_loss")]


def median_epoch_seconds(ends):
    gaps = [b - a for a, b in zip(ends, ends[1:])]  # drops epoch 1 (tracing, data loading)
    return statistics.median(gaps)


def run_case_script(name):
    """Run benchmarks/<name>_overhead.py (its own processes); it prints its own ratio."""
    subprocess.run([sys.executable, os.path.join(HERE, f"{name}_overhead.py")], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["mlp", "image", "text", "all"], default="mlp")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the Fashion-MNIST idx files (Debian: dataset-fashion-mnist)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for name in ("image", "text"):
        if args.case in (name, "all"):
            print(f"== case: {name}", flush=True)
            run_case_script(name)
    if args.case not in ("mlp", "all"):
        return
    print("== case: mlp", flush=True)
    if not os.path.isdir(args.data_dir):
        sys.exit(f"error: {args.data_dir} not found; install Debian's dataset-fashion-mnist or pass --data-dir")

    plain, ours = mlp_epoch_seconds(args.data_dir, args.epochs, args.batch_size, args.repeats)
    p, t = min(plain), min(ours)
    print(f"case: MLP on Fashion-MNIST, batch {args.batch_size}, {args.epochs} epochs, {args.repeats} repeat(s)")
    print(f"  plain Keras  {p:.3f} s/epoch  (runs: {', '.join(f'{v:.3f}' for v in plain)})")
    print(f"  tl-app run   {t:.3f} s/epoch  (runs: {', '.join(f'{v:.3f}' for v in ours)})")
    print(f"  speed tl-app/plain = {p / t:.3f} (best of each; target >= 0.97)")


def mlp_epoch_seconds(data_dir, epochs, batch, repeats):
    """(plain Keras, tl-app) median epoch seconds of each repeat, run alternately."""
    plain, ours = [], []
    for _ in range(repeats):  # alternate, so drift in machine load hits both sides alike
        plain.append(median_epoch_seconds(plain_keras_epoch_ends(data_dir, epochs, batch)))
        ours.append(median_epoch_seconds(tl_app_epoch_ends(data_dir, epochs, batch)))
    return plain, ours


def rows(quick=False, data_dir="/usr/share/datasets/fashion-mnist", batch=32):
    """The table's MLP overhead row: training steps/s of `tl-app run` against plain Keras (best of the repeats)."""
    from rows import row

    epochs, repeats = (3, 2) if quick else (4, 3)
    plain, ours = mlp_epoch_seconds(data_dir, epochs, batch, repeats)
    steps = -(-TRAIN_EXAMPLES // batch)
    return [row("overhead, MLP epoch (Fashion-MNIST, tl-app run vs plain Keras)", steps / min(plain),
                steps / min(ours), 0.97, "steps/s", note=f"batch {batch}, best of {repeats}, epoch 1 left out")]

if __name__ == "__main__":
    main()
