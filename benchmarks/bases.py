"""Acceptance of the image bases: every offline base on Fashion-MNIST as PNG class folders, side by side.

For each base (`--bases`, default every base with an offline asset) and size (`--sizes`, default 96):

1. `tl_app.run("image_folder", base=B, weights="offline", image_size=S, tflite="int8")`: the recipe's
   defaults (5 head epochs on cached features, 5 fine-tune epochs, zoom/flip/contrast augmentation),
   exported and converted to int8 TFLite (evaluated in LiteRT on the test split);
2. the same run with `fine_tune_epochs=0` and no export: the head phase alone, which finds the features
   the first run kept (seconds), for the head-phase test accuracy.

Prints one row per base and size: head and fine-tuned test accuracy, seconds per epoch (median of the
epoch-to-epoch wall times TensorBoard recorded, head phase on cached features and fine-tune phase),
SavedModel size (saved_model.pb + variables, as TF Serving loads it; the export directory also holds
the Keras weights and warmup requests), int8 TFLite size and accuracy, and the whole run's seconds. Data: benchmarks/fashion_png.py's
9,000 train (1,000 of them held out for validation by the recipe) / 2,000 test PNGs, seed 42.

    python benchmarks/bases.py [--bases mobilenet_v2,xception] [--sizes 96,160] [--out-dir DIR] [--json FILE]

Needs `tl-app assets` (the bases' offline weights) and Debian's dataset-fashion-mnist.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def epoch_seconds(run_dir):
    """{phase: median seconds between consecutive epochs of that phase}, from the train/ TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(run_dir, "train"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tag = next(t for t in events.Tags()["tensors"] + events.Tags()["scalars"] if t.endswith("loss"))
    values = events.Tensors(tag) if tag in events.Tags()["tensors"] else events.Scalars(tag)
    times = [v.wall_time for v in sorted(values, key=lambda v: v.step)]
    return [b - a for a, b in zip(times, times[1:])]


def directory_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def measure(base, size, root, out_dir, seed):
    import keras

    import tl_app
    from tl_app.export.saved_export import saved_model_bytes

    where = {"export_dir": os.path.join(out_dir, "saved_models"), "logdir": os.path.join(out_dir, "runs")}
    common = dict(data_dir=root, base=base, weights="offline", image_size=size, seed=seed)
    keras.backend.clear_session()
    full = tl_app.run("image_folder", tflite="int8", run_id=f"{base}-{size}", **common, **where)
    keras.backend.clear_session()
    head = tl_app.run("image_folder", fine_tune_epochs=0, export=False, run_id=f"{base}-{size}-head", **common, **where)
    gaps = epoch_seconds(full.run_dir)
    head_epochs = tl_app.registry.get("image_folder").default_config().epochs
    with open(os.path.join(full.tflite_path, "evaluation.json"), encoding="utf-8") as f:
        tflite = json.load(f)
    int8 = next(row for row in tflite["rows"] if row["mode"] == "int8")
    return {
        "base": base, "image_size": size, "head_accuracy": head.metrics["accuracy"],
        "fine_tuned_accuracy": full.metrics["accuracy"],
        "head_epoch_s": statistics.median(gaps[: head_epochs - 1]),
        "fine_tune_epoch_s": statistics.median(gaps[head_epochs - 1:]),
        "savedmodel_bytes": saved_model_bytes(full.export_path), "export_dir_bytes": directory_bytes(full.export_path),
        "int8_bytes": int8["size_bytes"], "int8_accuracy": int8["accuracy"],
        "run_s": full.seconds, "head_run_s": head.seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", default="mobilenet_v2,efficientnet_lite0,efficientnet_lite2,xception")
    parser.add_argument("--sizes", default="96")
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out-dir", help="exports, runs and the PNGs (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="append each row to this JSON-lines file as it is measured")
    args = parser.parse_args()

    from fashion_png import write_fashion_pngs

    out_dir = args.out_dir or tempfile.mkdtemp(prefix="tl_app_bases_")
    root = os.path.join(out_dir, "fashion")
    if not os.path.isdir(root):
        write_fashion_pngs(root, args.idx_dir)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for base in args.bases.split(","):
            started = time.time()
            row = measure(base, size, root, out_dir, args.seed)
            rows.append(row)
            print(f"measured {base} at {size} px in {time.time() - started:.0f} s: {row}", flush=True)
            if args.json:
                with open(args.json, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    print("\n| base | px | head acc | fine-tuned acc | s/epoch head | s/epoch fine-tune | SavedModel MB | int8 MB | int8 acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['base']} | {r['image_size']} | {r['head_accuracy']:.4f} | {r['fine_tuned_accuracy']:.4f} |"
              f" {r['head_epoch_s']:.1f} | {r['fine_tune_epoch_s']:.1f} | {r['savedmodel_bytes'] / 1e6:.1f} |"
              f" {r['int8_bytes'] / 1e6:.2f} | {r['int8_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
