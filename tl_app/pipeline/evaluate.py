"""The `evaluate` stage: one set of test predictions, and every figure made from it.

Every worker predicts (locally: no collective op, so a multi-worker cluster needs
nothing from its peers here); the chief writes, into the run directory:
`metrics.json` (flat keys a quality gate can name), `predictions.csv`,
`confusion_matrix.png`, `reliability.png`, `examples.png` (inputs that are
pictures), `training_curves.png`, `report.md`; into TensorBoard (`test/`): the
metrics, the figures, the per-class table, the most confident mistakes, the model
graph, and the run's HParams record; and prints the metrics and per-class tables.
Each step is a function of the context, so the gate's retry rounds evaluate again
with the same code.
"""
import os
import threading
import time

from tl_app import config as config_lib
from tl_app import log
from tl_app.evaluate import report, summaries
from tl_app.evaluate.evaluation import evaluate, image_examples, keras_loss
from tl_app.evaluate.predictions import predict
from tl_app.pipeline.context import Stage


def evaluate_test_split(ctx):
    """The trained model's `Evaluation` on the test split (metrics with `loss` as Keras computes it).

    Multi-label data (`DataSplits.label_mode`): per-label thresholds are chosen on the validation split
    first (`evaluate.thresholds`), and the test split is judged at them (`evaluate.multi_label`).
    """
    data = ctx.data
    # On one device, outside the strategy (no collective): batches of one replica's share of the global batch.
    predictions, traced = predict(ctx.model, data.test, ctx.trainer.replica_batch_size, data.class_names,
                                  data.test_references, split=data.test_split_name)
    loss = keras_loss(ctx.recipe.loss(), ctx.model, predictions)
    if data.label_mode == "multi_label":
        return evaluate_multi_label(ctx, predictions, loss), traced
    return evaluate(predictions, loss=loss), traced


def evaluate_multi_label(ctx, predictions, loss):
    """Thresholds chosen on validation (or `fixed_threshold` for all), saved as thresholds.json in the run directory;
    the test split judged at them."""
    from tl_app.evaluate.multi_label import evaluate_label_sets
    from tl_app.evaluate.thresholds import THRESHOLDS_FILE, choose_thresholds, thresholds_record

    import numpy as np

    data, floor, fixed = ctx.data, ctx.config.threshold_floor, ctx.config.fixed_threshold
    if fixed is not None:  # one threshold for every label, as the user asked
        thresholds = np.full(len(data.class_names), fixed, np.float32)
        record = thresholds_record(data.class_names, thresholds, floor, split=None)
        log.info(f"thresholds: {fixed} for every label (fixed_threshold)")
    else:
        validation, _ = predict(ctx.model, data.validation, ctx.trainer.replica_batch_size, data.class_names,
                                split="validation")
        thresholds = choose_thresholds(validation.labels, validation.probabilities, floor).astype(np.float32)
        record = thresholds_record(data.class_names, thresholds, floor)
        shown = ", ".join(f"{name} {t:.3f}" for name, t in zip(data.class_names, thresholds))
        log.info(f"per-label thresholds (best F1 on {len(validation.labels)} validation examples, shrunk toward the"
                 f" shared cut by their bootstrap noise, floor {floor}): {shown}")
    if ctx.is_chief:
        from tl_app import atomic

        atomic.write_json(os.path.join(ctx.run_dir, THRESHOLDS_FILE), record)
    return evaluate_label_sets(predictions, thresholds, loss=loss)


def tensorboard_step(ctx):
    """The step of end-of-run records: the last epoch trained."""
    return max(0, ctx.trainer.epoch - 1)


def write_tensorboard(ctx, evaluation, traced):
    """Test scalars, images, tables and graph in `test/`; the HParams record in the run directory."""
    step = tensorboard_step(ctx)
    test_writer = summaries.writer(os.path.join(ctx.run_dir, summaries.TEST))
    # One tag group ("evaluation/...") after Keras' epoch_* charts, not a chart group per metric at the top.
    summaries.write_scalars(test_writer, {f"{summaries.EVALUATION}/{k}": v for k, v in evaluation.metrics.items()
                                          if "/" not in k}, step)
    summaries.write_images(test_writer, evaluation.figures, step)
    texts = {"per_class": evaluation.per_class_markdown()}
    if "examples" not in evaluation.figures:
        texts["most_confident_mistakes"] = evaluation.mistakes_markdown()
    summaries.write_texts(test_writer, texts, step)
    summaries.write_graph(test_writer, traced)
    test_writer.close()
    run_name = f"{ctx.recipe.name}/{os.path.basename(ctx.run_dir)}"
    summaries.write_hparams(ctx.run_dir, ctx.config_dict, run_name)


def training_curves(ctx):
    """training_curves.png from the run's epoch scalars (all phases, resumed or not); its file name, or None."""
    from tl_app.evaluate.plots import training_curves_png

    epochs = summaries.read_epoch_scalars(ctx.run_dir)
    if not epochs:
        return None
    phases = summaries.phase_starts(epochs, ctx.trainer.phase_names())
    with open(os.path.join(ctx.run_dir, report.CURVES), "wb") as f:
        f.write(training_curves_png(epochs, phases, f"{ctx.recipe.name} {os.path.basename(ctx.run_dir)}"))
    return report.CURVES


def write_report(ctx):
    """report.md from the context's evaluation (and gate decision, once there is one)."""
    evaluation = ctx.evaluation
    defaults = config_lib.to_dict(ctx.recipe.default_config())
    data = ctx.data
    trainer = ctx.trainer
    facts = [f"recipe `{ctx.recipe.name}`, run `{os.path.basename(ctx.run_dir)}`",
             f"{len(data.class_names)} classes; {len(evaluation.predictions.labels)} {evaluation.split} examples",
             f"{trainer.epoch} epoch(s) in phases: {', '.join(trainer.phase_names()[:trainer.state.phase])}"]
    markdown = report.report_markdown(
        evaluation, f"{ctx.recipe.name}: run report", facts, report.config_differences(ctx.config_dict, defaults),
        ctx.evaluation_files, ctx.curves_file, ctx.gate)
    for section in ctx.report_sections:
        markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(section()) + "\n"
    return report.write_report(ctx.run_dir, markdown)


def draw(ctx, evaluation, traced):
    """The figures (files and TensorBoard), the other TensorBoard records and the training curves."""
    evaluation.render(image_examples(ctx.data.test, evaluation))
    ctx.evaluation_files = evaluation.write_figures(ctx.run_dir)
    write_tensorboard(ctx, evaluation, traced)
    ctx.curves_file = training_curves(ctx)


def evaluate_and_report(ctx):
    """Evaluate on the test split; on the chief, write and show everything. Sets `ctx.evaluation` and `ctx.metrics`.

    The metrics, predictions.csv and the tables come at once (the gate and the export need the metrics);
    the figures, TensorBoard records and report.md are drawn by a `ReportJob` in the background while the
    run goes on (the export and its serving check mostly wait on TensorFlow and on another process), and
    `wait_for_report` finishes them: at the gate, in `finish`, and however the run ends.
    """
    wait_for_report(ctx)  # a gate retry round evaluates again: the last round's files are complete first
    evaluation, traced = evaluate_test_split(ctx)
    for extra in ctx.metric_extras:
        evaluation.metrics.update(extra(evaluation))
    ctx.evaluation, ctx.metrics = evaluation, evaluation.metrics
    if not ctx.is_chief:
        return evaluation
    evaluation.write_data(ctx.run_dir)
    print(evaluation.metrics_table(), flush=True)
    print(evaluation.per_class_table(), flush=True)
    ctx.report_job = ReportJob(lambda: draw(ctx, evaluation, traced))
    ctx.closing.callback(ctx.report_job.settle)  # a run that fails later still leaves its figures whole
    return evaluation


def wait_for_report(ctx):
    """Finish the report `evaluate_and_report` started: wait for its figures, write report.md; its path or None."""
    job, ctx.report_job = ctx.report_job, None
    if job is None:
        return None
    job.result()
    path = write_report(ctx)
    log.info(f"report: {path}; predictions: {os.path.join(ctx.run_dir, 'predictions.csv')}")
    return path


class ReportJob:
    """`draw()` on a thread of its own, started at once; `result()` waits for it and raises what it raised.

    matplotlib's object API (no pyplot) and TensorBoard's file writers are safe on another thread;
    the job is the only one drawing while it runs (the phase-end looks draw before it starts).

    Args:
        draw: the work, a function of nothing.

    Examples:
        >>> job = ReportJob(lambda: sum(range(10)))
        >>> job.result()
        45
    """

    def __init__(self, draw):
        self._draw = draw
        self._value = self._error = None
        self._waited = False
        self.cpu_seconds = self.wall_seconds = 0.0  # the job's own, as benchmarks/evaluation.py reports it
        self._thread = threading.Thread(target=self._run, name="tl-app-report", daemon=True)
        self._thread.start()

    def _run(self):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            self._value = self._draw()
        except BaseException as exc:  # handed to the thread that waits (result)
            self._error = exc
        finally:
            self.wall_seconds, self.cpu_seconds = time.perf_counter() - wall, time.thread_time() - cpu

    def result(self):
        self._waited = True
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def settle(self):
        """Wait for the job when the run ends another way (an error): its files complete, its error logged."""
        if self._waited:
            return
        self._thread.join()
        if self._error is not None:
            log.warn(f"the report's figures were not all written: {self._error}")


class Evaluate(Stage):
    """Test predictions on every worker (no collectives); files, TensorBoard, report and tables from the chief."""

    name = "evaluate"

    def run(self, ctx):
        evaluate_and_report(ctx)
