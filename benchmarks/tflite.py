"""TFLite acceptance: every quantization mode side by side with the float SavedModel, for three models.

    image   image_folder on Fashion-MNIST as PNG class folders (benchmarks/fashion_png.py: 96 px,
            weights=offline, the recipe's default 5 + 5 epochs)
    digits  the embedded digits recipe (MLP)
    text    text_folder on BBC News with the offline MiniLM (benchmarks/bbc_news.py's split)

For each it trains with `tl_app.run` (or takes `--image-export` / `--digits-export` /
`--text-export`, an export an earlier run wrote: no training), converts it with
`tl-app tflite`'s library in every mode, and prints size, test accuracy,
agreement with the SavedModel and p50 latency at batch 1 (LiteRT vs the
SavedModel, every core), then the acceptance checks of issue 16:

    image   int8 accuracy >= float - 1 point; int8 file <= 30% of float32; int8 p50 < SavedModel p50
    digits, text   dynamic and float16 accuracy within 1 point of the float model

    python benchmarks/tflite.py [--case image|digits|text|all] [--out-dir DIR] [--json result.json]

Latency depends on load: figures from a busy machine are not final.
Needs `tl-app assets` (mobilenet_v2, minilm), Debian's dataset-fashion-mnist, and the bench extra (BBC News).
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = ("image", "digits", "text")
POINT = 0.01


def train(case, out_dir, args):
    """A fresh export of `case` (its path)."""
    import tl_app

    where = {"export_dir": os.path.join(out_dir, "saved_models"), "logdir": os.path.join(out_dir, "runs")}
    if case == "digits":
        return tl_app.run("digits", **where).export_path
    if case == "image":
        from fashion_png import write_fashion_pngs

        root = os.path.join(out_dir, "fashion")
        if not os.path.isdir(root):
            write_fashion_pngs(root, args.idx_dir)
        return tl_app.run("image_folder", data_dir=root, weights="offline", image_size=96, **where).export_path
    from bbc_news import bbc_news_dir

    return tl_app.run("text_folder", data_dir=bbc_news_dir(), preset="offline", test_fraction=0.2,
                      validation_fraction=0.05, fine_tune_epochs=args.text_fine_tune_epochs, **where).export_path


def convert(export_dir, modes):
    import keras

    from tl_app.api import recipe_of_export
    from tl_app.export.tflite_package import write_tflite_package

    keras.backend.clear_session()
    started = time.time()
    package = write_tflite_package(export_dir, modes, recipe_of_export(export_dir))
    return package, time.time() - started


def checks(case, rows):
    """(description, passed) for the acceptance items of `case`."""
    by_mode = {row["mode"]: row for row in rows}
    reference = by_mode["savedmodel"]["accuracy"]
    if case == "image":
        int8, float32 = by_mode["int8"], by_mode["none"]
        return [
            (f"int8 accuracy {int8['accuracy']:.4f} >= float {reference:.4f} - 0.01", int8["accuracy"] >= reference - POINT),
            (f"int8 file {int8['size_bytes'] / float32['size_bytes']:.0%} of float32 <= 30%",
             int8["size_bytes"] <= 0.30 * float32["size_bytes"]),
            (f"int8 p50 {int8['p50_ms']:.2f} ms < SavedModel p50 {by_mode['savedmodel']['p50_ms']:.2f} ms",
             int8["p50_ms"] < by_mode["savedmodel"]["p50_ms"]),
        ]
    return [(f"{mode} accuracy {by_mode[mode]['accuracy']:.4f} within 0.01 of float {reference:.4f}",
             abs(by_mode[mode]["accuracy"] - reference) <= POINT) for mode in ("dynamic", "float16")]


def rows(quick=False, idx_dir="/usr/share/datasets/fashion-mnist"):
    """The table's TFLite rows (issue 16's goals) for the image export: int8 size, accuracy and p50 latency.

    Quick: 100 training PNGs per class, head phase only (2 epochs); full: the recipe's defaults on 1000 per class.
    """
    import tl_app
    from fashion_png import write_fashion_pngs
    from rows import row

    with tempfile.TemporaryDirectory(prefix="tl-app-bench-tflite-") as out:
        per_class, test = (100, 30) if quick else (1000, 200)
        root = write_fashion_pngs(os.path.join(out, "fashion"), idx_dir, per_class, test)
        extra = {"epochs": 2, "fine_tune_epochs": 0} if quick else {}
        export_dir = tl_app.run("image_folder", data_dir=root, weights="offline", image_size=96,
                                export_dir=os.path.join(out, "saved_models"), logdir=os.path.join(out, "runs"),
                                **extra).export_path
        package, _ = convert(export_dir, ["none", "int8"])
    by = {r["mode"]: r for r in package.rows}
    note = f"image_folder, Fashion PNG {per_class}/{test} per class, 96 px"
    return [row("TFLite int8 size vs float32", by["none"]["size_bytes"] / 2**20, by["int8"]["size_bytes"] / 2**20,
                0.30, "MB", higher_is_better=False, note=note),
            row("TFLite int8 accuracy vs SavedModel", by["savedmodel"]["accuracy"], by["int8"]["accuracy"], -POINT,
                "accuracy", ratio=by["int8"]["accuracy"] - by["savedmodel"]["accuracy"], note="ratio = difference"),
            row("TFLite int8 p50 latency vs SavedModel (batch 1)", by["savedmodel"]["p50_ms"], by["int8"]["p50_ms"],
                1.0, "ms", higher_is_better=False, note=note)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES + ("all",), default="all")
    parser.add_argument("--out-dir", help="where exports and packages go (default: a temporary directory)")
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--text-fine-tune-epochs", type=int, default=3, help="text_folder's default: 3")
    for case in CASES:
        parser.add_argument(f"--{case}-export", help=f"convert this {case} export instead of training one")
    parser.add_argument("--json", help="also write every table and check here")
    args = parser.parse_args()

    from tl_app.export.tflite import MODES
    from tl_app.export.tflite_report import cpu_name

    out_dir = args.out_dir or tempfile.mkdtemp(prefix="tl-app-bench-tflite-")
    cases = CASES if args.case == "all" else (args.case,)
    results = {}
    for case in cases:
        export_dir = getattr(args, f"{case}_export")
        started = time.time()
        if not export_dir:
            export_dir = train(case, out_dir, args)
            print(f"[{case}] trained {export_dir} in {time.time() - started:.0f} s", flush=True)
        package, seconds = convert(export_dir, list(MODES))
        results[case] = {"export": export_dir, "package": package.path, "convert_and_evaluate_s": seconds,
                         "rows": package.rows, "checks": checks(case, package.rows)}
    print(f"\nCPU: {cpu_name()}, {os.cpu_count()} cores; latency at batch 1 (median of single calls)")
    failed = 0
    for case, result in results.items():
        print(f"\n{case}: {result['package']} (from {result['export']}; convert + evaluate {result['convert_and_evaluate_s']:.0f} s)")
        print(f"  {'mode':<10} {'size':>10} {'of float':>8} {'accuracy':>8} {'agreement':>9} {'p50 ms':>8}")
        for row in result["rows"]:
            ratio = row.get("size_vs_float32")
            print(f"  {row['mode']:<10} {row['size_bytes'] / 2**20:>7.2f} MB {(f'{ratio:.0%}' if ratio else ''):>8}"
                  f" {row['accuracy']:>8.4f} {row['agreement']:>9.4f} {row['p50_ms']:>8.2f}")
        for text, passed in result["checks"]:
            failed += not passed
            print(f"  [{'pass' if passed else 'FAIL'}] {text}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"cpu": cpu_name(), "cores": os.cpu_count(), "results": results}, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
