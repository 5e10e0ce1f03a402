"""The cost of the end-of-run evaluation and report, against the run it ends and plain Keras' evaluate.

For each case one real run through the pipeline, every stage timed (wall and
process CPU), plus the phase-end looks (validation confusion matrix and
per-class table at the end of each phase), plus, as the baseline, plain
`model.evaluate` on the same test split (what a run reported before: loss and
accuracy, no files) timed right before the evaluate stage and left out of the
run's total. "Evaluation + report" is what the run waits for: the evaluate stage
(test predictions, scikit-learn metrics, predictions.csv, printed tables), the
wait for the figures drawn in the background (four figures, TensorBoard records,
HParams, report.md: `tl_app.pipeline.evaluate.ReportJob`, started by evaluate and
overlapping the export and its serving check), and the phase-end looks. Its CPU
share counts the background job's own CPU time.

Targets: <= 10% of a `digits` run, <= 5% of an `image_folder` run on the
Fashion-MNIST PNG folders (96 px, offline MobileNetV2, the recipe's defaults).

    python benchmarks/evaluation.py [--case digits|image|all] [--train-per-class 1000] [--test-per-class 200]

The image case needs Debian's dataset-fashion-mnist and `tl-app assets mobilenet_v2`.
"""
import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_png import image_folder_recipe, write_fashion_pngs  # noqa: E402


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """Wall and CPU seconds by name."""

    def __init__(self):
        self.wall, self.cpu = {}, {}

    def timed(self, name, function):
        def wrapped(*args, **kwargs):
            wall, cpu = time.perf_counter(), cpu_seconds()
            try:
                return function(*args, **kwargs)
            finally:
                self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
                self.cpu[name] = self.cpu.get(name, 0.0) + cpu_seconds() - cpu
        return wrapped


def measured_run(recipe, workdir):
    """Run `recipe` through the pipeline with every stage, the phase-end looks and a plain-Keras baseline timed."""
    from tl_app.engine import epoch_tensorboard
    from tl_app.pipeline import RunOptions, Stage, default_stages, run_recipe
    from tl_app.pipeline import evaluate as evaluate_stage

    clock = Clock()

    class PlainKerasEvaluate(Stage):
        name = "baseline"

        def run(self, ctx):
            ctx.baseline = ctx.trainer.evaluate(ctx.data.test)  # model.evaluate: loss and accuracy only

    stages = default_stages()
    # Before evaluate: the report's figures are drawn in the background after it, overlapping the run's
    # later stages (counted in the run), never this baseline (left out of it).
    stages.insert([s.name for s in stages].index("evaluate"), PlainKerasEvaluate())
    for stage in stages:
        stage.run = clock.timed(stage.name, stage.run)
    original = epoch_tensorboard.EpochTensorBoard.on_phase_end
    epoch_tensorboard.EpochTensorBoard.on_phase_end = clock.timed("phase_end", original)
    wait, job_class = evaluate_stage.wait_for_report, evaluate_stage.ReportJob
    evaluate_stage.wait_for_report = clock.timed("report_wait", wait)  # in finish (or the gate): waiting for it
    jobs = clock.jobs = []

    class RecordedJob(job_class):
        def __init__(self, draw):
            super().__init__(draw)
            jobs.append(self)

    evaluate_stage.ReportJob = RecordedJob
    try:
        options = RunOptions(logdir=os.path.join(workdir, "runs"), export_dir=os.path.join(workdir, "saved_models"),
                             strategy="one_device")
        result = run_recipe(recipe, options, stages=stages)
    finally:
        epoch_tensorboard.EpochTensorBoard.on_phase_end = original
        evaluate_stage.wait_for_report, evaluate_stage.ReportJob = wait, job_class
    return result, clock


def report(case, result, clock, target):
    stages = [name for name in clock.wall if name not in ("baseline", "phase_end", "report_wait")]
    total_wall = sum(clock.wall[n] for n in stages)
    total_cpu = sum(clock.cpu[n] for n in stages)
    # What the run waits for: the evaluate stage, the wait for the background figures (inside finish or
    # the gate), the phase-end looks (inside train). CPU: process CPU in those, plus the background job's own.
    parts = ("evaluate", "report_wait", "phase_end")
    job_wall, job_cpu = sum(j.wall_seconds for j in clock.jobs), sum(j.cpu_seconds for j in clock.jobs)
    cost_wall = sum(clock.wall.get(n, 0.0) for n in parts)
    cost_cpu = sum(clock.cpu.get(n, 0.0) for n in parts) - clock.cpu.get("report_wait", 0.0) + job_cpu
    base_wall, base_cpu = clock.wall["baseline"], clock.cpu["baseline"]
    print(f"\n{case}: test accuracy {result.metrics['accuracy']:.4f}")
    print("  " + "  ".join(f"{n} {clock.wall[n]:.2f} s" for n in stages + ["phase_end"] if n in clock.wall))
    print(f"  {'':34s}{'wall s':>9s}{'share':>8s}{'cpu s':>9s}{'share':>8s}")
    rows = [("run (all stages)", total_wall, total_cpu),
            ("evaluation + report (tl_app)", cost_wall, cost_cpu),
            ("  of which phase-end looks", clock.wall.get("phase_end", 0.0), clock.cpu.get("phase_end", 0.0)),
            ("  of which waiting for the figures", clock.wall.get("report_wait", 0.0), 0.0),
            ("figures drawn in the background", job_wall, job_cpu),
            ("plain Keras model.evaluate", base_wall, base_cpu),
            ("added over plain evaluate", cost_wall - base_wall, cost_cpu - base_cpu)]
    for label, wall, cpu in rows:
        print(f"  {label:34s}{wall:9.2f}{wall / total_wall:8.1%}{cpu:9.2f}{cpu / total_cpu:8.1%}")
    print(f"  target: evaluation + report <= {target:.0%} of the run -> "
          f"{'met' if cost_wall / total_wall <= target else 'missed'} (wall), "
          f"{'met' if cost_cpu / total_cpu <= target else 'missed'} (cpu); "
          f"{cost_wall / max(base_wall, 1e-9):.1f}x the plain evaluate's wall time")
    return {"run_wall_s": total_wall, "evaluation_wall_s": cost_wall, "share_wall": cost_wall / total_wall}


def digits_case(workdir):
    from tl_app import registry

    recipe = registry.get("digits")(None)
    result, clock = measured_run(recipe, workdir)
    return report("digits (defaults: 30 epochs)", result, clock, 0.10)


def image_case(workdir, args):
    data = write_fashion_pngs(os.path.join(workdir, "fashion_png"), args.idx_dir, args.train_per_class,
                              args.test_per_class)
    recipe = image_folder_recipe(data, "weights=offline", "image_size=96")
    result, clock = measured_run(recipe, workdir)
    return report(f"image_folder (Fashion-MNIST PNG, {args.train_per_class}/{args.test_per_class} per class, 96 px, 5+5 "
           "epochs)", result, clock, 0.05)


def rows(quick=False, idx_dir="/usr/share/datasets/fashion-mnist"):
    """The table's evaluation-share rows: evaluation + report as a share of a whole run's wall time (digits; and
    image_folder in the full table)."""
    import argparse as _argparse

    from rows import row

    def share_row(name, r, goal, note):
        return row(f"evaluation share of a run, {name}", r["run_wall_s"], r["evaluation_wall_s"], goal, "s",
                   higher_is_better=False, ratio=r["share_wall"], note=note + "; ratio = share of wall time")

    os.environ.setdefault("TL_APP_FEATURE_CACHE", tempfile.mkdtemp(prefix="tl-app-bench-features-"))
    with tempfile.TemporaryDirectory(prefix="tl-app-bench-eval-") as workdir:
        out = [share_row("digits", digits_case(workdir), 0.10, "30 epochs")]
        if not quick:
            args = _argparse.Namespace(idx_dir=idx_dir, train_per_class=1000, test_per_class=200)
            out.append(share_row("image_folder", image_case(workdir, args), 0.05, "Fashion PNG 1000/200, 5+5 epochs"))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["digits", "image", "all"], default="all")
    parser.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("TL_APP_FEATURE_CACHE", tempfile.mkdtemp(prefix="tl-app-bench-features-"))  # no reuse
    with tempfile.TemporaryDirectory(prefix="tl-app-bench-eval-") as workdir:
        if args.case in ("digits", "all"):
            digits_case(workdir)
        if args.case in ("image", "all"):
            image_case(workdir, args)


if __name__ == "__main__":
    main()
