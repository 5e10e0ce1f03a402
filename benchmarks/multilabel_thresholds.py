"""Threshold rules for multi-label runs, compared without the benchmark's test split (issue 30).

benchmarks/multilabel.py judges the product on 180 test rows; choosing a threshold rule (or a
training setting) by those figures would tune on test. This study compares them on other rows:

* `score`: trains the product exactly as benchmarks/multilabel.py does (same rows, seed, splits;
  overrides with `--set key=value`), then scores with its export (a) the run's validation split
  and (b) `--dev-rows` new rows drawn the same way from the BBC articles the benchmark's 900 rows
  never use (disjoint from its train, validation and test rows). Writes `scores.npz`. The run
  itself evaluates its test split as every run does: its log goes to `run.log`, which this study
  never reads.
* `probe`: the same two-row-sets idea on many resamples, cheaply: one-vs-rest logistic regression on
  frozen MiniLM features of all rows (benchmark rows and dev rows), each resample a new
  train/validation split of the benchmark-sized rows judged on the dev rows.
* `rules`: each rule of `tl_app.evaluate.thresholds` (and a few alternatives written here) fitted
  on the validation scores, micro F1 on the dev rows, for every `scores.npz` given.

    python benchmarks/multilabel_thresholds.py score --workdir W [--seed 42] [--dev-rows 300] [--set fine_tune_epochs=3]
    python benchmarks/multilabel_thresholds.py probe --workdir W [--resamples 40]
    python benchmarks/multilabel_thresholds.py rules W1/scores.npz [W2/scores.npz ...]
"""
import argparse
import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from multilabel import articles, make_rows  # noqa: E402

BENCH_ROWS = 900
DEV_SEED_OFFSET = 1000  # the dev rows' draw: another seed than the benchmark's


def benchmark_and_dev_rows(seed, dev_rows):
    """`(rows, dev)`: benchmarks/multilabel.py's rows at `seed`, and `dev_rows` rows of articles they do not use."""
    found = articles()
    rng = np.random.default_rng(seed)
    pools = {t: list(rng.permutation(len(found[t]))) for t in sorted(found)}  # as make_rows draws them
    rows = make_rows(found, BENCH_ROWS, seed, pools=pools)
    assert rows == make_rows(found, BENCH_ROWS, seed)
    dev = make_rows(found, dev_rows, seed + DEV_SEED_OFFSET, pools=pools)
    return rows, dev


def multi_hot(rows, names):
    index = {n: i for i, n in enumerate(names)}
    y = np.zeros((len(rows), len(names)), np.float32)
    for k, (_, labels) in enumerate(rows):
        for name in labels.split(";"):
            y[k, index[name]] = 1
    return y


def score(args):
    """Train as benchmarks/multilabel.py does; scores.npz: validation and dev labels and probabilities."""
    import contextlib
    import time

    import tl_app
    from tl_app import registry

    work = args.workdir
    os.makedirs(work, exist_ok=True)
    rows, dev = benchmark_and_dev_rows(args.seed, args.dev_rows)
    data = os.path.join(work, "bbc_multilabel.csv")
    with open(data, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text", "labels"], *rows])
    overrides = {k: json.loads(v) if v[:1] in "0123456789[{-tfn" else v
                 for k, v in (item.split("=", 1) for item in args.set)}
    settings = dict(data_dir=data, preset="offline", label_mode="multi_label", label_column="labels",
                    sequence_length=128, fine_tune_epochs=args.fine_tune_epochs, seed=args.seed,
                    validation_fraction=args.validation_fraction, test_fraction=0.2, logdir=os.path.join(work, "runs"),
                    export_dir=os.path.join(work, "saved_models"), serving_check=False)
    settings.update(overrides)
    started = time.time()
    with open(os.path.join(work, "run.log"), "w") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):  # the run's test figures are in there: not read by this study
        result = tl_app.run("text_csv", **settings)
    seconds = time.time() - started
    with open(os.path.join(result.run_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    recipe = registry.get("text_csv")(None)
    for key in ("data_dir", "label_mode", "label_column", "seed", "validation_fraction", "test_fraction"):
        setattr(recipe.config, key, config[key])
    raw = recipe.load_texts()
    val_texts, y_val = raw.splits["validation"]
    names = list(raw.class_names)
    y_dev = multi_hot(dev, names)
    p_val = _serve_probabilities(result.export_path, list(val_texts))
    p_dev = _serve_probabilities(result.export_path, [t for t, _ in dev])
    path = os.path.join(work, "scores.npz")
    np.savez(path, y_val=np.asarray(y_val), p_val=p_val, y_dev=y_dev, p_dev=p_dev, names=np.array(names))
    print(json.dumps({"scores": path, "run_dir": result.run_dir, "run_seconds": round(seconds, 1),
                      "settings": {k: v for k, v in settings.items() if k not in ("logdir", "export_dir")}}, indent=2))


def _serve_probabilities(export_path, texts, batch=32):
    import tensorflow as tf

    serve = tf.saved_model.load(export_path).signatures["serving_default"]
    out = [serve(text=tf.constant(texts[i:i + batch]))["probabilities"].numpy() for i in range(0, len(texts), batch)]
    return np.concatenate(out)


def _f1_curve(y, p):
    """`(cuts, f1, lower)`: each distinct probability as a cut (predict p >= cut), its F1, the next lower probability."""
    order = np.argsort(-p, kind="stable")
    sp, sy = p[order], y[order].astype(bool)
    tp = np.cumsum(sy)
    last = np.flatnonzero(np.r_[sp[1:] != sp[:-1], True])
    f1 = 2 * tp[last] / (last + 1 + sy.sum())
    lower = np.r_[sp[last[:-1] + 1], 0.0]
    return sp[last], f1, lower


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def rule_plateau(y, p, floor=0.1, scale="prob"):
    """Per label: the middle of the span of cuts that reach the best F1 (probability or logit scale)."""
    out = []
    for j in range(y.shape[1]):
        if y[:, j].sum() == 0:
            out.append(0.5)
            continue
        cuts, f1, lower = _f1_curve(y[:, j], p[:, j])
        best = np.flatnonzero(f1 == f1.max())
        hi, lo = cuts[best].max(), lower[best].min()  # any cut in (lo, hi] gives the best F1 (if they are contiguous)
        if scale == "logit":
            t = float(_sigmoid((_logit(hi) + _logit(max(lo, 1e-6))) / 2))
        else:
            t = (hi + lo) / 2
        out.append(max(t, floor))
    return np.array(out)


def rule_shared(y, p, floor=0.1):
    """One cut for every label: the best micro F1 over the pooled validation decisions (midpoint of the gap)."""
    cuts, f1, lower = _f1_curve(y.ravel(), p.ravel())
    k = np.flatnonzero(f1 == f1.max())[0]
    return np.full(y.shape[1], max((cuts[k] + lower[k]) / 2, floor))


def _bootstrap_thresholds(y, p, rule, resamples=200, seed=0):
    rng = np.random.default_rng(seed)
    n = len(y)
    return np.array([rule(y[idx], p[idx]) for idx in (rng.integers(0, n, n) for _ in range(resamples))])


def rule_bagged(y, p, floor=0.1):
    """The median over bootstrap resamples of validation of the old rule's per-label cut."""
    from tl_app.evaluate.thresholds import best_f1_thresholds

    return np.maximum(np.median(_bootstrap_thresholds(y, p, lambda a, b: best_f1_thresholds(a, b, floor)), 0), floor)


def rule_expected_f1(y, p, floor=0.1, resamples=200, seed=0):
    """Per label: the cut (old rule's candidates) maximizing F1 averaged over bootstrap resamples of validation."""
    rng = np.random.default_rng(seed)
    n = len(y)
    idx = rng.integers(0, n, (resamples, n))
    out = []
    for j in range(y.shape[1]):
        if y[:, j].sum() == 0:
            out.append(0.5)
            continue
        cuts, _, lower = _f1_curve(y[:, j], p[:, j])
        cand = np.maximum((cuts + lower) / 2, floor)
        yb, pb = y[idx, j].astype(bool), p[idx, j]
        pred = pb[:, :, None] >= cand[None, None, :]
        tp = (pred & yb[:, :, None]).sum(1)
        f1 = 2 * tp / (pred.sum(1) + yb.sum(1)[:, None]).clip(1)
        mean = f1.mean(0)
        best = np.flatnonzero(mean >= mean.max() - 1e-12)
        out.append(float(cand[best].max()))
    return np.array(out)


def rule_shrunk(y, p, floor=0.1, resamples=200, seed=0, base=None):
    """Empirical-Bayes (James-Stein) shrinkage, in logits, of each label's cut toward the shared cut:
    weight tau^2 / (tau^2 + se_j^2), se_j^2 the bootstrap variance of label j's cut, tau^2 the spread of
    the cuts beyond that noise."""
    from tl_app.evaluate.thresholds import best_f1_thresholds

    base = base or (lambda a, b: best_f1_thresholds(a, b, floor))
    own = _logit(base(y, p))
    shared = _logit(rule_shared(y, p, floor))
    boot = _logit(_bootstrap_thresholds(y, p, base, resamples, seed))
    se2 = boot.var(0)
    tau2 = max(0.0, float(np.mean((own - shared) ** 2) - se2.mean()))
    w = tau2 / (tau2 + se2) if tau2 > 0 else np.zeros_like(se2)
    return np.maximum(_sigmoid(shared + w * (own - shared)), floor)


def candidate_rules():
    from tl_app.evaluate.thresholds import best_f1_thresholds, choose_thresholds

    rules = {"fixed_0.5": lambda y, p: np.full(y.shape[1], 0.5),
             "old": lambda y, p: best_f1_thresholds(y, p, 0.1),
             "plateau_prob": rule_plateau,
             "plateau_logit": lambda y, p: rule_plateau(y, p, scale="logit"),
             "shared": rule_shared,
             "bagged_median": rule_bagged,
             "expected_f1": rule_expected_f1,
             "shrunk": rule_shrunk,
             "product": lambda y, p: choose_thresholds(y, p, 0.1)}  # tl_app's rule as it stands
    return rules


def judge(y_val, p_val, y_dev, p_dev):
    """{rule: (micro F1 on dev, thresholds)}."""
    from sklearn.metrics import f1_score

    out = {}
    for name, rule in candidate_rules().items():
        t = np.asarray(rule(y_val, p_val), np.float64)
        out[name] = (float(f1_score(y_dev, p_dev >= t, average="micro")), t)
    return out


def rules(args):
    for path in args.scores:
        z = np.load(path)
        print(f"{path}: validation {len(z['y_val'])} rows, dev {len(z['y_dev'])} rows; labels {list(z['names'])}")
        for name, (f1, t) in judge(z["y_val"], z["p_val"], z["y_dev"], z["p_dev"]).items():
            print(f"  {name:14s} dev micro F1 {f1:.4f}  thresholds {np.round(t, 3).tolist()}")


def probe(args):
    """Many resamples of (train 630, validation 90) among the benchmark's rows, a logistic probe each, rules judged
    on the dev rows: mean and spread of dev micro F1 per rule."""
    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression

    from tl_app import registry
    from tl_app.engine.feature_store import FeatureStore
    from tl_app.engine.features import frozen_feature_cache, split_features

    rows, dev = benchmark_and_dev_rows(args.seed, args.dev_rows)
    feats_path = os.path.join(args.workdir, "probe_features.npz")
    names = sorted({n for _, labels in rows for n in labels.split(";")})
    if not os.path.exists(feats_path):
        os.makedirs(args.workdir, exist_ok=True)
        data = os.path.join(args.workdir, "rows.csv")
        with open(data, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([["text", "labels"], *rows])
        recipe = registry.get("text_csv")(None)
        for key, value in dict(data_dir=data, preset="offline", label_mode="multi_label", label_column="labels",
                               sequence_length=128, seed=args.seed, validation_fraction=0.1, test_fraction=0.2).items():
            setattr(recipe.config, key, value)
        model = recipe.build_model(recipe.load_data())
        cache = frozen_feature_cache(recipe, model)
        sets = {k: tf.data.Dataset.from_tensor_slices((tf.constant([t for t, _ in r]), multi_hot(r, names)))
                for k, r in (("bench", rows), ("dev", dev))}
        feats = split_features(cache.extractor, sets, 64, FeatureStore())
        np.savez(feats_path, x=feats["bench"][0], y=feats["bench"][1], x_dev=feats["dev"][0], y_dev=feats["dev"][1])
    z = np.load(feats_path)
    x, y, x_dev, y_dev = z["x"], z["y"], z["x_dev"], z["y_dev"]
    rng = np.random.default_rng(args.seed)
    found = {}
    for r in range(args.resamples):
        order = rng.permutation(len(x))
        tr, va = order[:630], order[630:720]
        p_va, p_dev = np.zeros((len(va), y.shape[1])), np.zeros((len(x_dev), y.shape[1]))
        for j in range(y.shape[1]):
            clf = LogisticRegression(C=1.0, max_iter=2000).fit(x[tr], y[tr, j])
            p_va[:, j], p_dev[:, j] = clf.predict_proba(x[va])[:, 1], clf.predict_proba(x_dev)[:, 1]
        for name, (f1, _) in judge(y[va], p_va, y_dev, p_dev).items():
            found.setdefault(name, []).append(f1)
    print(f"probe, {args.resamples} resamples of train 630 / validation 90 among the benchmark's rows (seed {args.seed}),"
          f" judged on {len(x_dev)} dev rows: dev micro F1 mean (sd) [wins over old]")
    for name, f1s in found.items():
        f1s = np.array(f1s)
        print(f"  {name:14s} {f1s.mean():.4f} ({f1s.std():.4f}) [{(f1s > np.array(found['old'])).sum()}/"
              f"{(f1s < np.array(found['old'])).sum()} better/worse]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--workdir", required=True)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--dev-rows", type=int, default=300)
    s.add_argument("--fine-tune-epochs", type=int, default=2)
    s.add_argument("--validation-fraction", type=float, default=0.1)
    s.add_argument("--set", action="append", default=[], help="key=value for tl_app.run (JSON values)")
    p = sub.add_parser("probe")
    p.add_argument("--workdir", required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dev-rows", type=int, default=300)
    p.add_argument("--resamples", type=int, default=40)
    r = sub.add_parser("rules")
    r.add_argument("scores", nargs="+")
    args = parser.parse_args()
    {"score": score, "probe": probe, "rules": rules}[args.command](args)


if __name__ == "__main__":
    main()
