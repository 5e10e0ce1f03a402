"""Head phase with and without the feature cache: wall time, speed-up, accuracy (one run, same data).

Fashion-MNIST written as PNG class folders (default 300 train / 100 test per
class), `image_folder` at 96 px with the offline MobileNetV2 weights, a
5-epoch head phase trained three ways, each on a freshly built model:
(a) through the whole model every epoch (`feature_cache=off`);
(b) on features computed once by the frozen base, in an empty feature store
    (a first run: extraction included);
(c) the same again, as a later run on the same data and base finds the
    features (b) kept (`keep_features`, on by default).
Augmentation is off in all three, as the cache requires.
Target: >= 10x faster, accuracies within 1 point.

Extraction is one forward pass of the base over the data, as costly as an
uncached epoch, so a first run of E epochs gains at most about E x; the 10x
holds for every later run on the same data (another learning rate, dropout,
a rerun), which is what (c) measures.

    python benchmarks/feature_cache.py [--train-per-class 300] [--epochs 5]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_png import image_folder_recipe, write_fashion_pngs  # noqa: E402


class EpochTimes:
    """Keras callback recording each epoch's wall time."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return _Timer()


def head_phase(root, mode, epochs):
    """(phase wall seconds, per-epoch seconds, test accuracy) for feature_cache=`mode`."""
    import keras

    from tl_app.engine.trainer import Trainer

    keras.utils.set_random_seed(42)
    recipe = image_folder_recipe(root, "weights=offline", "image_size=96", f"epochs={epochs}", "fine_tune_epochs=0",
                                 f"feature_cache={mode}", "augment_head_phase=false")
    data = recipe.load_data()
    model = recipe.build_model(data)
    timer = EpochTimes()
    trainer = Trainer(recipe, data, model, callbacks=[timer])
    (phase,) = recipe.phases(model)
    started = time.perf_counter()
    trainer.run_phase(phase)
    seconds = time.perf_counter() - started
    return seconds, timer.seconds, trainer.evaluate(data.test)["accuracy"]


def three_ways(idx_dir, train_per_class, test_per_class, epochs):
    """(cache off, first run, later run), each (phase seconds, epoch seconds, test accuracy), in an empty store."""
    with tempfile.TemporaryDirectory() as tmp:
        previous = os.environ.get("TL_APP_FEATURE_CACHE")
        os.environ["TL_APP_FEATURE_CACHE"] = os.path.join(tmp, "features")  # starts empty: (b) is a first run
        try:
            root = write_fashion_pngs(os.path.join(tmp, "fashion"), idx_dir, train_per_class, test_per_class)
            return tuple(head_phase(root, mode, epochs) for mode in ("off", "on", "on"))
        finally:
            if previous is None:
                os.environ.pop("TL_APP_FEATURE_CACHE")
            else:
                os.environ["TL_APP_FEATURE_CACHE"] = previous


def rows(quick=False, idx_dir="/usr/share/datasets/fashion-mnist"):
    """The table's feature-cache rows: head-phase wall time with the cache (first and later run) against without,
    and the accuracy difference (later run vs no cache)."""
    from rows import row

    per_class, epochs = (100, 5) if quick else (300, 5)
    full, first, later = three_ways(idx_dir, per_class, per_class // 3, epochs)
    note = f"{10 * per_class} PNGs, 96 px, MobileNetV2, {epochs} head epochs"
    return [row("feature cache, first run (head phase wall time, extraction included)", full[0], first[0], 1.0,
                "s", higher_is_better=True, ratio=full[0] / first[0], note=note + "; ratio = speed-up"),
            row("feature cache, later run (head phase wall time)", full[0], later[0], 10.0, "s",
                ratio=full[0] / later[0], note=note + "; ratio = speed-up"),
            row("feature cache, accuracy later run vs no cache", full[2], later[2], 0.01, "accuracy",
                higher_is_better=False, ratio=abs(full[2] - later[2]), note="ratio = |difference|")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    full, first, later = three_ways(args.idx_dir, args.train_per_class, args.test_per_class, args.epochs)
    after_first = lambda times: sum(times[1:]) / max(1, len(times) - 1)  # noqa: E731  (epoch 1 includes tracing)
    print(f"\nhead phase, {args.epochs} epochs, {10 * args.train_per_class} images (90% train), 96 px, offline weights")
    for label, (seconds, epochs, accuracy) in (("feature cache off", full), ("cache, first run", first),
                                               ("cache, later run", later)):
        print(f"  {label:<18}: {seconds:6.1f} s   epochs 2+: {after_first(epochs):.3f} s   accuracy {accuracy:.4f}"
              f"   speed-up {full[0] / seconds:5.1f}x")
    print(f"  first run: feature extraction (one pass over train + validation) took {first[0] - sum(first[1]):.1f} s;"
          f" later run: finding the kept features took {later[0] - sum(later[1]):.1f} s")
    print(f"  per epoch after extraction: {after_first(full[1]) / after_first(first[1]):.0f}x faster")
    print(f"  accuracy difference (off vs later run): {abs(full[2] - later[2]) * 100:.2f} points"
          f"; first vs later run: {abs(first[2] - later[2]) * 100:.2f} points")


if __name__ == "__main__":
    main()
