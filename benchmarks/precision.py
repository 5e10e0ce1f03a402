"""bfloat16 against float32 on this CPU, per family and phase: training (or inference) steps per second.

One process, both policies side by side: for each case a model is built under
`float32` and another under `mixed_bfloat16` (Keras layers read the policy
when built), then their compiled steps are timed interleaved (float32,
bfloat16, float32, ...), `--repeats` rounds of `--steps` steps after one
tracing call; the best round of each counts (the host is shared: the best is
the least disturbed). Cases, batch 32 each, the shapes the recipes use:

- mlp: Fashion-MNIST's MLP (784 -> 128 relu -> 10), a training step.
- image_head: the image head phase on cached features (1280 -> dropout -> 10).
- image_fine_tune: MobileNetV2 at 96 px, top ~30% of its layers training.
- feature_extraction: MobileNetV2 at 96 px frozen, a forward pass (what the
  feature store computes once).
- text_fine_tune: a BERT with MiniLM-L6's shape (6 layers, 384 hidden, 12
  heads), sequence length 128, a training step (random weights and token ids:
  speed does not depend on them).
- text_fine_tune_small: the same with the tests' tiny BERT (2 layers, 32 hidden), sequence length 64: under
  `precision.SMALL_ENCODER_WIDTH` hidden units, `auto` keeps float32.

`tl_app.engine.precision.BFLOAT16_CPUS` holds, per kind of CPU (AMX, AVX512_BF16), the
cases `mixed_precision=auto` turns bfloat16 on for; this script is what that table rests on.

    python benchmarks/precision.py [--cases all] [--steps 5] [--repeats 3]
"""
import argparse
import json
import time

BATCH = 32
CASES = ("mlp", "image_head", "image_fine_tune", "feature_extraction", "text_fine_tune", "text_fine_tune_small")


def _compiled(model, loss="sparse_categorical_crossentropy"):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
    return model


def _dense_classifier(input_dim, hidden, classes=10):
    import keras
    from keras import layers

    inputs = keras.Input((input_dim,))
    x = layers.Dense(hidden, activation="relu")(inputs) if hidden else inputs
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(classes, activation="softmax", dtype="float32")(x)
    return _compiled(keras.Model(inputs, outputs))


def _mobilenet(trainable):
    import keras
    from keras import layers

    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights=None)
    cut = int(len(base.layers) * 0.7)
    for layer in base.layers:
        layer.trainable = trainable and base.layers.index(layer) >= cut
    inputs = keras.Input((96, 96, 3))
    x = layers.GlobalAveragePooling2D()(base(inputs, training=False))
    outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)
    return _compiled(keras.Model(inputs, outputs)) if trainable else keras.Model(inputs, x)


def _bert(layers_=6, hidden=384, heads=12, length=128):
    import keras
    import keras_hub
    from keras import layers

    backbone = keras_hub.models.BertBackbone(vocabulary_size=30522, num_layers=layers_, num_heads=heads,
                                             hidden_dim=hidden, intermediate_dim=4 * hidden, max_sequence_length=512)
    ids = keras.Input((length,), dtype="int32", name="token_ids")
    mask = keras.Input((length,), dtype="int32", name="padding_mask")
    segments = keras.Input((length,), dtype="int32", name="segment_ids")
    pooled = backbone({"token_ids": ids, "padding_mask": mask, "segment_ids": segments})["pooled_output"]
    outputs = layers.Dense(5, dtype="float32")(pooled)
    return _compiled(keras.Model([ids, mask, segments], outputs),
                     keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def case_step(name, rng):
    """`(build, step)`: `build()` makes the model under the current global policy; `step(model)` runs one batch."""
    import numpy as np

    labels = rng.integers(0, 10, BATCH)
    if name == "mlp":
        x = rng.random((BATCH, 784), dtype=np.float32)
        return (lambda: _dense_classifier(784, 128)), (lambda m: m.train_on_batch(x, labels))
    if name == "image_head":
        x = rng.random((BATCH, 1280), dtype=np.float32)
        return (lambda: _dense_classifier(1280, 0)), (lambda m: m.train_on_batch(x, labels))
    images = rng.random((BATCH, 96, 96, 3), dtype=np.float32) * 2 - 1
    if name == "image_fine_tune":
        return (lambda: _mobilenet(True)), (lambda m: m.train_on_batch(images, labels))
    if name == "feature_extraction":
        return (lambda: _mobilenet(False)), (lambda m: m.predict_on_batch(images))
    if name in ("text_fine_tune", "text_fine_tune_small"):
        shape = dict(text_fine_tune=(6, 384, 12, 128), text_fine_tune_small=(2, 32, 2, 64))[name]
        ids = rng.integers(1000, 30000, (BATCH, shape[3])).astype("int32")
        feed = [ids, np.ones_like(ids), np.zeros_like(ids)]
        return (lambda: _bert(*shape)), (lambda m: m.train_on_batch(feed, labels % 5))
    raise ValueError(name)


def measure(name, steps, repeats, seed=42):
    """`{policy: best steps/s}` for case `name`, float32 and mixed_bfloat16 interleaved in this process."""
    import keras
    import numpy as np

    build, step = case_step(name, np.random.default_rng(seed))
    models = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(seed)
        models[policy] = build()
        step(models[policy])  # traces
    keras.mixed_precision.set_global_policy("float32")
    best = {policy: 0.0 for policy in models}
    for _ in range(repeats):
        for policy, model in models.items():
            started = time.perf_counter()
            for _ in range(steps):
                step(model)
            best[policy] = max(best[policy], steps / (time.perf_counter() - started))
    return best


def _steps(name, steps):
    """Small models take milliseconds a step: more of them, for a measurable round."""
    return steps * 40 if name in ("mlp", "image_head", "text_fine_tune_small") else steps


def rows(quick=False, cases=("image_fine_tune", "feature_extraction", "text_fine_tune", "mlp", "image_head",
                              "text_fine_tune_small"), repeats=3):
    """Table rows (see benchmarks/table.py): bfloat16 steps/s against float32 per case, goal >= 1.0 where
    `mixed_precision=auto` picks bfloat16 on this host's CPU, else < 1.0 (float32 stays, rightly).

    Quick: without `text_fine_tune` (over half of this source's time on a CPU without AMX): the quick table
    measures MiniLM-L6's bfloat16 fine-tuning once, as a BBC News epoch (benchmarks/bbc_news.py)."""
    from tl_app.engine.precision import choose_precision

    if quick:
        cases = tuple(c for c in cases if c != "text_fine_tune")
    out, steps = [], 5  # fewer steps were too noisy on a loaded host (MobileNetV2 fine-tune read 1.1x with 3)
    for name in cases:
        speeds = measure(name, _steps(name, steps), repeats)
        ratio = speeds["mixed_bfloat16"] / speeds["float32"]
        picked = choose_precision("auto", "cpu", name).policy == "mixed_bfloat16"  # on this host's CPU
        out.append({"name": f"bfloat16 speed-up, {name.replace('_', ' ')} (auto picks {'bfloat16' if picked else 'float32'})",
                    "baseline": round(speeds["float32"], 2), "value": round(speeds["mixed_bfloat16"], 2),
                    "ratio": round(ratio, 3), "goal": ">= 1.0" if picked else "< 1.0 (stays float32)",
                    "met": ratio >= 1.0 if picked else ratio < 1.0, "unit": "steps/s"})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="all", help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = CASES if args.cases == "all" else tuple(args.cases.split(","))
    for name in cases:
        speeds = measure(name, _steps(name, args.steps), args.repeats)
        ratio = speeds["mixed_bfloat16"] / speeds["float32"]
        print(json.dumps({"case": name, "float32_steps_per_s": round(speeds["float32"], 2),
                          "bfloat16_steps_per_s": round(speeds["mixed_bfloat16"], 2), "ratio": round(ratio, 3)}),
              flush=True)


if __name__ == "__main__":
    main()
