"""A run as a pipeline of named stages: each stage alone, a stage added, a stage skipped."""
import dataclasses
import json
import os

import pytest


def _context(workdir, **fields):
    from tl_app.pipeline import RunContext, RunOptions
    from tl_app.recipes.digits import Digits

    cfg = dataclasses.replace(Digits.default_config(), epochs=2, **fields)
    options = RunOptions(logdir=str(workdir / "runs"), export_dir=str(workdir / "saved_models"), strategy="one_device",
                         run_id="stages")
    return RunContext(Digits(cfg), options)


def test_each_stage_runs_alone_and_fills_in_the_context(workdir):
    from tl_app.pipeline.evaluate import Evaluate
    from tl_app.pipeline.export import Export
    from tl_app.pipeline.finish import Finish
    from tl_app.pipeline.prepare import Prepare
    from tl_app.pipeline.train import Train

    ctx = _context(workdir)
    Prepare().run(ctx)
    run_dir = workdir / "runs" / "digits" / "stages"
    assert ctx.run_dir == str(run_dir) and ctx.data.class_names == [str(d) for d in range(10)]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["recipe"] == "digits" and saved["epochs"] == 2 and saved["distribution"]["strategy"] == "one_device"
    assert ctx.model is None and not (run_dir / "checkpoints").exists()  # nothing trained yet

    Train().run(ctx)
    assert ctx.trainer.epoch == 2 and ctx.model is ctx.trainer.model
    assert (run_dir / "checkpoints" / "checkpoint.json").is_file()

    Evaluate().run(ctx)
    from tl_app.evaluate.metrics import metric_names

    assert set(ctx.metrics) == set(metric_names(ctx.data.class_names)) >= {"accuracy", "loss", "f1_macro", "ece"}
    assert json.loads((run_dir / "metrics.json").read_text()) == ctx.metrics

    assert Export().enabled(ctx)
    Export().run(ctx)
    assert ctx.export_path == str(workdir / "saved_models" / "digits" / "1")
    assert json.loads((workdir / "saved_models" / "digits" / "1" / "assets.extra" / "config.json").read_text()) == saved

    assert not (run_dir / "complete.json").exists()
    Finish().run(ctx)
    assert json.loads((run_dir / "complete.json").read_text())["export"] == ctx.export_path
    assert "![confusion matrix](confusion_matrix.png)" in (run_dir / "report.md").read_text()  # finish waited


def test_the_report_is_drawn_while_the_export_runs_and_complete_when_the_run_is(workdir, monkeypatch):
    """The figures wait for an event the export sets: the run finishes only because they overlap."""
    import threading

    from tl_app.export import savedmodel
    from tl_app.pipeline import evaluate as evaluate_stage

    exporting = threading.Event()
    draw, export_model = evaluate_stage.draw, savedmodel.export_model

    def draw_during_export(ctx, evaluation, traced):
        assert exporting.wait(timeout=120), "the figures were waited for before the export ran"
        draw(ctx, evaluation, traced)

    def export_then_release(*args, **kwargs):
        assert not (run_dir / "report.md").exists()  # evaluate returned before its figures
        exporting.set()
        return export_model(*args, **kwargs)

    monkeypatch.setattr(evaluate_stage, "draw", draw_during_export)
    monkeypatch.setattr(savedmodel, "export_model", export_then_release)
    ctx = _context(workdir)
    run_dir = workdir / "runs" / "digits" / "stages"
    from tl_app.pipeline import run_recipe

    result = run_recipe(ctx.recipe, ctx.options)
    assert exporting.is_set() and result.export_path
    report = (run_dir / "report.md").read_text()
    assert "![reliability diagram](reliability.png)" in report and (run_dir / "reliability.png").stat().st_size > 0
    assert json.loads((run_dir / "complete.json").read_text())["export"] == result.export_path


def test_prepare_steps_are_separate_functions(workdir):
    from tl_app.errors import UserError
    from tl_app.pipeline import prepare

    ctx = _context(workdir, dropout=1.5)
    with pytest.raises(UserError, match="dropout=1.5"):
        prepare.check(ctx)
    ctx = _context(workdir)
    prepare.check(ctx)
    prepare.choose_strategy(ctx)
    prepare.load_data(ctx)
    assert ctx.choice.name == "one_device" and ctx.data is not None
    assert not (workdir / "runs").exists()  # data loaded, no run directory yet: bad data would leave nothing


def test_a_stage_added_to_the_pipeline_sees_the_metrics_and_can_stop_the_export(workdir):
    from tl_app.pipeline import Stage, default_stages, run_recipe
    from tl_app.recipes.digits import Digits
    from tl_app.pipeline import RunOptions

    seen = []

    class Record(Stage):
        name = "record"

        def run(self, ctx):
            seen.append((ctx.metrics["accuracy"], ctx.export_path))

    class Refuse(Stage):
        name = "refuse"

        def run(self, ctx):
            raise RuntimeError("below the bar")

    stages = default_stages()
    names = [s.name for s in stages]
    assert names == ["prepare", "inspect", "serving_check", "train", "evaluate", "explain", "gate", "export", "tflite", "finish"]
    cfg = dataclasses.replace(Digits.default_config(), epochs=2)
    options = RunOptions(logdir=str(workdir / "runs"), export_dir=str(workdir / "saved_models"), strategy="one_device")
    result = run_recipe(Digits(cfg), options, stages=[*stages[:5], Record(), *stages[5:]])
    assert seen == [(result.metrics["accuracy"], None)]  # after evaluate, before export
    assert result.export_path.endswith(os.path.join("digits", "1"))

    stages = default_stages()
    with pytest.raises(RuntimeError, match="below the bar"):
        run_recipe(Digits(cfg), dataclasses.replace(options, run_id="refused"), stages=[*stages[:5], Refuse(), *stages[5:]])
    assert sorted(os.listdir(workdir / "saved_models" / "digits")) == [".export.lock", "1"]  # no second version
    assert not (workdir / "runs" / "digits" / "refused" / "complete.json").exists()


def test_export_stage_is_skipped_without_export(workdir):
    from tl_app.pipeline.export import Export

    ctx = _context(workdir)
    ctx.options = dataclasses.replace(ctx.options, export=False)
    assert not Export().enabled(ctx)


def test_a_recipe_can_replace_its_stages_and_a_rejected_run_exits_with_its_code(workdir, cli):
    from tl_app.errors import RunRejected
    from tl_app.pipeline.context import Stage
    from tl_app.recipes.digits import Digits

    class Rejected(RunRejected):
        exit_code = 7

    class Veto(Stage):
        name = "veto"

        def run(self, ctx):
            raise Rejected(f"accuracy {ctx.metrics['accuracy']:.2f} is not enough")

    class VetoedDigits(Digits):
        def stages(self, stages):
            return [s if s.name != "export" else Veto() for s in stages]

    from tl_app import registry

    registry.register("vetoed_digits")(VetoedDigits)
    try:
        result = cli("run", "vetoed_digits", "--epochs", "1")
    finally:
        registry.forget([VetoedDigits])
    assert result.exit_code == 7 and "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        "error: accuracy " + result.output.split("error: accuracy ")[1].strip()]
    assert not (workdir / "saved_models" / "vetoed_digits").exists()
