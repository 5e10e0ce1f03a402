"""The `gate` stage (with `--gate`): publish only a model that meets the requirement, else fine-tune again.

    train -> evaluate -> gate: met?  yes -> export (the decision in its metrics.json)
                                     no  -> retry round (--gate-retries N) -> evaluate -> gate ...
                                            out of rounds -> rejected/ + exit 3, nothing published

The conditions are checked against the recipe's metric names once the data is
loaded (`check`), so a typo costs seconds. A retry round is one more training
phase (`Trainer.run_retry_round`): logged, in TensorBoard like any phase, and a
killed run resumes inside it. The decision and its figures go to `gate.json`,
the report, TensorBoard (`test/gate` text) and, when it passes, the export's
metrics.json. A missed gate keeps the model as a complete SavedModel under
`<run>/rejected/<N>/` (loadable, `tl-app evaluate`-able, usable with `--init-from`),
marks the run complete, and raises `GateFailed` (exit 3).
"""
import os

from tl_app import log
from tl_app.evaluate import gate as gate_lib
from tl_app.evaluate import summaries
from tl_app.evaluate.metrics import metric_names
from tl_app.pipeline import evaluate as evaluate_stage
from tl_app.pipeline import run_dirs
from tl_app.pipeline.context import Stage
from tl_app.pipeline.evaluate import evaluate_and_report, tensorboard_step, write_report
from tl_app.pipeline.export import write_model

REJECTED = "rejected"


def _previous_rounds(ctx):
    """Rounds a resumed run had already tried (its gate.json), so the record stays whole."""
    path = os.path.join(ctx.run_dir or "", gate_lib.GATE_FILE)
    if not (ctx.continuing and os.path.isfile(path)):
        return []
    return run_dirs.read_json(ctx.run_dir, gate_lib.GATE_FILE).get("rounds", [])


def _round(trainer, decision):
    summary = "passed" if decision["passed"] else f"missed: {gate_lib.failures(decision)}"
    return {"round": trainer.rounds_done, "epochs": trainer.epoch, "summary": summary, "passed": decision["passed"]}


def record(ctx, decision):
    """gate.json, the report's gate section and TensorBoard's `test/gate` text (chief only)."""
    ctx.gate = decision
    if not ctx.is_chief:
        return
    gate_lib.write(ctx.run_dir, decision)
    if evaluate_stage.wait_for_report(ctx) is None:  # it writes report.md (with the gate) once its figures exist
        write_report(ctx)
    verdict = "passed" if decision["passed"] else "failed: " + gate_lib.failures(decision)
    test_writer = summaries.writer(os.path.join(ctx.run_dir, summaries.TEST))
    summaries.write_texts(test_writer, {"gate": f"**{decision['spec']}**: {verdict}"}, tensorboard_step(ctx))
    test_writer.close()


def keep_rejected(ctx, decision):
    """The refused model as a complete SavedModel under `<run>/rejected/`; the run marked complete."""
    base = ctx.run_dir if ctx.is_chief else ctx.scratch
    path = write_model(ctx, os.path.join(base, REJECTED), {**ctx.metrics, "gate": decision})
    if ctx.is_chief:
        decision["rejected"] = path
        record(ctx, decision)
        run_dirs.mark_complete(ctx.run_dir, {"metrics": ctx.metrics, "export": None, "rejected": path,
                                             "gate": decision, "epochs": ctx.trainer.epoch})
    return path


class Gate(Stage):
    name = "gate"

    def enabled(self, ctx):
        return ctx.options.gate is not None

    def check(self, ctx):
        from tl_app.errors import UserError

        from tl_app.pipeline import inspect as inspect_stage

        conditions = gate_lib.parse(ctx.options.gate)
        names = metric_names(ctx.data.class_names)
        if ctx.data.label_mode == "multi_label":
            from tl_app.evaluate import multi_label

            names = multi_label.metric_names(ctx.data.class_names)
            single = multi_label.single_label_names_error([c.metric for c in conditions])
            if single:
                raise UserError(f"--gate {ctx.options.gate!r}: {', '.join(single)} is a single-label metric, which a"
                                f" label_mode=multi_label run does not report; use {', '.join(names[:4])}, ... (e.g."
                                " f1_micro>=0.9,map>=0.9).")
        inspect_stage.check_gate_names(ctx, conditions)  # a count the data inspection will not compute
        gate_lib.check_names(conditions, names + inspect_stage.metric_names(ctx), ctx.options.gate)
        if ctx.options.gate_retries < 0:
            raise UserError(f"--gate-retries {ctx.options.gate_retries}: must be 0 or more.")

    def run(self, ctx):
        spec, retries, trainer = ctx.options.gate, ctx.options.gate_retries, ctx.trainer
        conditions = gate_lib.parse(spec)
        published = gate_lib.published(ctx.options.export_dir, ctx.recipe.name)
        if published is None and any(c.relative for c in conditions):
            log.info(f"gate: no published version under {os.path.join(ctx.options.export_dir, ctx.recipe.name)}: "
                     "relative conditions (published) skipped")
        elif published is not None:
            log.info(f"gate: comparing with the published version {published['path']}")
        decision = gate_lib.decide(conditions, ctx.metrics, published, spec)
        decision["rounds"] = _previous_rounds(ctx)
        if trainer.rounds_done > len(decision["rounds"]):  # a round this run resumed inside, now finished
            decision["rounds"].append(_round(trainer, decision))
        while not decision["passed"] and trainer.rounds_done < retries:
            log.info(f"gate missed ({gate_lib.failures(decision)}): back to fine-tuning, round "
                     f"{trainer.rounds_done + 1} of {retries}")
            rounds = decision["rounds"]
            record(ctx, decision)  # a kill inside the round keeps what was decided so far
            trainer.run_retry_round()
            evaluate_and_report(ctx)
            decision = gate_lib.decide(conditions, ctx.metrics, published, spec)
            decision["rounds"] = rounds + [_round(trainer, decision)]
        if decision["passed"]:
            log.info(f"gate passed: {spec}")
            record(ctx, decision)
            return
        tried = f" after {trainer.rounds_done} retry round(s)" if trainer.rounds_done else ""
        path = keep_rejected(ctx, decision)
        where = os.path.join(ctx.options.export_dir, ctx.recipe.name)
        raise gate_lib.GateFailed(f"gate failed{tried}: {gate_lib.failures(decision)}. Nothing was published under "
                                  f"{where}; the model is in {path if ctx.is_chief else 'the chief run directory'}.")
