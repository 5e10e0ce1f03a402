"""tl-app's image head phase vs a plain Keras script: same model, same data, same input pipeline, no caching.

Both train MobileNetV2 (offline weights, 96 px, frozen) + pooling + dropout +
softmax on the same in-memory Fashion-MNIST images (PNG class folders decoded
once), batch 32, shuffled, with validation each epoch; epoch 1 (tracing) is
left out. Prints the ratio of mean epoch times (target <= 1.05).

    python benchmarks/image_overhead.py [--train-per-class 200] [--epochs 4]
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from feature_cache import EpochTimes  # noqa: E402
from fashion_png import image_folder_recipe, write_fashion_pngs  # noqa: E402


def tl_app_epochs(recipe, data, epochs):
    import keras

    from tl_app.engine.trainer import Trainer

    keras.utils.set_random_seed(42)
    model = recipe.build_model(data)
    timer = EpochTimes()
    (phase,) = recipe.phases(model)
    Trainer(recipe, data, model, callbacks=[timer]).run_phase(phase)
    return timer.seconds


def tl_app_fine_tune_epochs(recipe, data):
    """Epoch seconds of the recipe's fine_tune phase (run alone, on the built model), and the base's trainable flags."""
    import keras

    from tl_app.engine.trainer import Trainer

    keras.utils.set_random_seed(42)
    model = recipe.build_model(data)
    timer = EpochTimes()
    head, fine_tune = recipe.phases(model)
    Trainer(recipe, data, model, callbacks=[timer]).run_phase(fine_tune, 1)
    base = recipe._classifier_of(model).base
    return timer.seconds, [layer.trainable for layer in base.layers]


def plain_keras_epochs(data, weights_file, epochs, batch_size=32, image_size=96, trainable=None, learning_rate=1e-3):
    """The script a user would write by hand, on the same unbatched datasets; `trainable`: the base's layer flags
    (fine-tuning: the layers tl-app's fine_tune phase trains), else the base is frozen."""
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(42)
    base = keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), include_top=False, weights=weights_file)
    base.trainable = trainable is not None
    for layer, flag in zip(base.layers, trainable or ()):
        layer.trainable = flag
    inputs = keras.Input((None, None, 3))
    x = layers.Resizing(image_size, image_size, antialias=True)(inputs)
    x = layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = layers.GlobalAveragePooling2D()(base(x, training=False))
    outputs = layers.Dense(len(data.class_names), activation="softmax")(layers.Dropout(0.2)(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    train = data.train.shuffle(10_000, seed=42).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    validation = data.validation.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    timer = EpochTimes()
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=[timer], verbose=2)
    return timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    runs = head_epoch_seconds(args.idx_dir, args.train_per_class, args.epochs)
    mean = {name: sum(times) / len(times) for name, times in runs.items()}
    print(f"\nhead-phase epoch, {len(runs['tl-app'])} epochs each (tracing epochs left out), 96 px, no feature cache")
    for name, seconds in mean.items():
        print(f"  {name:<12} {seconds:.2f} s/epoch  (min {min(runs[name]):.2f})")
    print(f"  speed tl-app / plain keras: mean {mean['plain keras'] / mean['tl-app']:.3f},"
          f" best-of {min(runs['plain keras']) / min(runs['tl-app']):.3f} (target >= 0.97)")


def head_epoch_seconds(idx_dir, train_per_class, epochs, repeats=2):
    """{"tl-app": [...], "plain keras": [...]}: head-phase epoch seconds (tracing epochs left out), interleaved."""
    from tl_app.assets import require

    with tempfile.TemporaryDirectory() as tmp:
        root = write_fashion_pngs(os.path.join(tmp, "fashion"), idx_dir, train_per_class, 20)
        recipe = image_folder_recipe(root, "weights=offline", "image_size=96", f"epochs={epochs}",
                                     "fine_tune_epochs=0", "feature_cache=off", "augment_head_phase=false",
                                     "mixed_precision=float32")
        data = recipe.load_data()
        runs = {"tl-app": [], "plain keras": []}
        for _ in range(repeats):  # interleaved: the machine is shared, load drifts
            runs["tl-app"] += tl_app_epochs(recipe, data, epochs)[1:]
            runs["plain keras"] += plain_keras_epochs(data, require("mobilenet_v2"), epochs)[1:]
    return runs


def fine_tune_epoch_seconds(idx_dir, train_per_class, epochs, repeats=2):
    """{"tl-app": [...], "plain keras": [...]}: fine-tune epoch seconds (tracing epochs left out), interleaved;
    no augmentation on either side (the same input pipeline), the same layers training, Adam at lr / 10."""
    from tl_app.assets import require

    with tempfile.TemporaryDirectory() as tmp:
        root = write_fashion_pngs(os.path.join(tmp, "fashion"), idx_dir, train_per_class, 20)
        recipe = image_folder_recipe(root, "weights=offline", "image_size=96", "epochs=1",
                                     f"fine_tune_epochs={epochs}", "augment=false", "mixed_precision=float32")
        data = recipe.load_data()
        runs = {"tl-app": [], "plain keras": []}
        for _ in range(repeats):  # interleaved: the machine is shared, load drifts
            seconds, trainable = tl_app_fine_tune_epochs(recipe, data)
            runs["tl-app"] += seconds[1:]
            runs["plain keras"] += plain_keras_epochs(data, require("mobilenet_v2"), epochs, trainable=trainable,
                                                      learning_rate=recipe.config.learning_rate / 10)[1:]
    return runs


def rows(quick=False, idx_dir="/usr/share/datasets/fashion-mnist"):
    """The table's image head-phase overhead row: steps/s of tl-app's head phase against plain Keras (best epoch)."""
    from rows import row

    per_class, epochs = (100, 3) if quick else (200, 4)
    runs = head_epoch_seconds(idx_dir, per_class, epochs, repeats=2 if quick else 3)
    steps = -(-int(10 * per_class * 0.9) // 32)  # image_folder carves 10% validation
    tuned = fine_tune_epoch_seconds(idx_dir, per_class, epochs, repeats=2 if quick else 3)
    return [row("overhead, image head epoch (MobileNetV2 96 px, no cache, vs plain Keras)",
                steps / min(runs["plain keras"]), steps / min(runs["tl-app"]), 0.97, "steps/s",
                note=f"{10 * per_class} PNGs, batch 32, best epoch"),
            row("overhead, image fine-tune epoch (MobileNetV2 96 px, top ~30% training, vs plain Keras)",
                steps / min(tuned["plain keras"]), steps / min(tuned["tl-app"]), 0.97, "steps/s",
                note=f"{10 * per_class} PNGs, batch 32, no augmentation, best epoch")]

if __name__ == "__main__":
    main()
