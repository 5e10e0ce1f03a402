"""Multi-label images: Fashion-MNIST items placed two to an image, through `image_csv` with the offline MobileNetV2.

Each 56x56 grayscale PNG holds two items of different classes in two different quadrants (seeded),
labelled with both; `labels.csv` lists `path,labels` (paths relative to it). Then the product
(`tl_app.run("image_csv", label_mode=multi_label, weights=offline, image_size=96)`, head phase on
cached features and optionally fine-tuning) against a one-vs-rest logistic probe on the same frozen
features (`benchmarks/multilabel.py`'s `probe`), per-label thresholds against one 0.5.

    python benchmarks/multilabel_fashion.py [--images 3000] [--fine-tune-epochs 0] [--seed 42] [--out result.json]

Needs Debian's dataset-fashion-mnist and the offline asset (`tl-app assets mobilenet_v2`).
"""
import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_png import CLASSES  # noqa: E402
from multilabel import probe  # noqa: E402

CORNERS = [(0, 0), (0, 28), (28, 0), (28, 28)]


def write_pairs(root, n, idx_dir, seed):
    """root/images/*.png and root/labels.csv: n images of two Fashion-MNIST training items each."""
    from PIL import Image

    from tl_app.mlp.idx import load_idx_dir

    (x, y), _ = load_idx_dir(idx_dir)
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    with open(os.path.join(root, "labels.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "labels"])
        for i in range(n):
            first = int(rng.integers(len(x)))
            second = int(rng.choice(np.flatnonzero(y != y[first])))
            canvas = np.zeros((56, 56), np.uint8)
            for item, corner in zip((first, second), rng.choice(4, 2, replace=False)):
                top, left = CORNERS[corner]
                canvas[top:top + 28, left:left + 28] = x[item]
            name = f"images/{i:05d}.png"
            Image.fromarray(canvas).save(os.path.join(root, name))
            writer.writerow([name, ";".join(sorted({CLASSES[y[first]], CLASSES[y[second]]}))])
    return os.path.join(root, "labels.csv")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--fine-tune-epochs", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out")
    args = parser.parse_args()

    import tl_app

    work = args.workdir or tempfile.mkdtemp(prefix="tl_app_multilabel_fashion_")
    data = write_pairs(os.path.join(work, "data"), args.images, args.idx_dir, args.seed)
    started = time.time()
    result = tl_app.run("image_csv", data_dir=data, label_mode="multi_label", weights="offline", image_size=96,
                        fine_tune_epochs=args.fine_tune_epochs, epochs=20, seed=args.seed, validation_fraction=0.1,
                        test_fraction=0.2, logdir=os.path.join(work, "runs"), export_dir=os.path.join(work, "saved_models"),
                        serving_check=False)
    m = result.metrics
    report = {"images": args.images, "seed": args.seed, "fine_tune_epochs": args.fine_tune_epochs,
              "run_seconds": round(time.time() - started, 1), "run_dir": result.run_dir, "export": result.export_path,
              "product": {k: round(m[k], 4) for k in ("map", "f1_micro", "f1_micro_at_0.5", "f1_macro", "f1_macro_at_0.5",
                                                      "subset_accuracy", "hamming_loss")},
              "probe": {k: round(v, 4) for k, v in probe(
                  result.run_dir, args.seed, "image_csv",
                  ("data_dir", "label_mode", "weights", "image_size", "seed", "validation_fraction",
                   "test_fraction")).items()}}
    from rows import print_result

    print_result(report, args.out)


if __name__ == "__main__":
    main()
