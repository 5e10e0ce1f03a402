"""Seconds per `tl-app tune` head trial: the data decoded once per tune against once per trial, in one run.

The Fashion-MNIST PNG folders of benchmarks/fashion_png.py (9,000 train incl. 1,000 validation, 2,000
test; 12,000 PNGs), image_folder on offline MobileNetV2 at 96 px. The features are extracted first (one
head-only run, not timed), so every trial trains on cached features as `tl-app tune`'s head trials do.
Then `--trials` head trials (random tuner, seed 42: both sides run the same values), twice: with the
trials' data kept in memory for the tune (`tl_app.data.reuse`, what `tl-app tune` does) and with that
switched off (each trial decodes every image again, as before). `--rounds` alternates the two sides.

    python benchmarks/tune_trials.py [--trials 6] [--rounds 1] [--out-dir DIR]
    python benchmarks/table.py --only tune_trials      # its row of the benchmark table
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))


def _tune(root, work, name, trials, reuse_on):
    import tl_app
    from tl_app.data import reuse
    from tl_app.select import tuning

    scope = reuse.reused_data if reuse_on else contextlib.nullcontext
    original = tuning.reuse.reused_data
    tuning.reuse.reused_data = scope
    try:
        started = time.perf_counter()
        result = tl_app.tune("image_folder", trials=trials, fine_tune_trials=0, tuner="random", run_id=name,
                             logdir=os.path.join(work, "runs"), data_dir=root, weights="offline", image_size=96)
        return time.perf_counter() - started, result
    finally:
        tuning.reuse.reused_data = original


def measure(work, idx_dir, trials, rounds, train_per_class=1000, test_per_class=200):
    """Per round and side: {"decode", "round", "wall_s", "trial_s", "best"}, sides alternating."""
    from fashion_png import write_fashion_pngs

    import tl_app

    root = os.path.join(work, "fashion")
    if not os.path.isdir(root):
        write_fashion_pngs(root, idx_dir, train_per_class=train_per_class, test_per_class=test_per_class)
    tl_app.run("image_folder", data_dir=root, weights="offline", image_size=96, epochs=1, fine_tune_epochs=0,
               export=False, logdir=os.path.join(work, "runs"))  # the features, kept for the trials
    out = []
    for round_ in range(rounds):
        for reuse_on in (False, True):
            name = f"{'once' if reuse_on else 'each'}-{round_}"
            seconds, result = _tune(root, work, name, trials, reuse_on)
            out.append({"decode": "once per tune" if reuse_on else "once per trial", "round": round_,
                        "wall_s": round(seconds, 1), "trial_s": [r["seconds"] for r in _trial_rows(result)],
                        "best": result["best"]["score"]})
            print(json.dumps(out[-1]), flush=True)
    return out


def _best_walls(measured):
    return [min(r["wall_s"] for r in measured if r["decode"] == d) for d in ("once per trial", "once per tune")]


def rows(quick=False, idx_dir="/usr/share/datasets/fashion-mnist"):
    """The table's row (full table only: 4-5 minutes): a tune's head-trial wall time, data decoded once per trial
    (before) against once per tune."""
    from rows import row

    if quick:
        return []
    per_class, trials, rounds = 1000, 6, 2
    work = tempfile.mkdtemp(prefix="tune_trials_")
    before, after = _best_walls(measure(work, idx_dir, trials, rounds, per_class, per_class // 5))
    return [row("tune head trials, data decoded once per tune vs once per trial", before / trials, after / trials,
                1.0, "s/trial", ratio=before / after,
                note=f"{trials} head trials on cached features, {12 * per_class} PNGs, 96 px, MobileNetV2, random"
                     f" tuner seed 42, best of {rounds}; ratio = speed-up (benchmarks/tune_trials.py)")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out-dir", help="default: a temporary directory")
    args = parser.parse_args()
    work = args.out_dir or tempfile.mkdtemp(prefix="tune_trials_")
    measured = measure(work, args.idx_dir, args.trials, args.rounds)
    before, after = _best_walls(measured)
    for decode, wall in (("once per trial", before), ("once per tune", after)):
        print(f"{decode}: wall {wall:.1f} s for {args.trials} head trials ({wall / args.trials:.1f} s a trial,"
              f" best of {args.rounds})")
    print(f"speed-up {before / after:.2f}x")


def _trial_rows(result):
    import csv

    with open(os.path.join(result["tune_dir"], "trials.csv"), encoding="utf-8") as f:
        return [{"seconds": float(r["seconds"])} for r in csv.DictReader(f)]


if __name__ == "__main__":
    main()
