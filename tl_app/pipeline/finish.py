"""The `finish` stage: mark the run complete (it is never resumed or reused) and say where to look."""
import os

from tl_app import log
from tl_app.pipeline import evaluate, run_dirs
from tl_app.pipeline.context import Stage


class Finish(Stage):
    name = "finish"

    def run(self, ctx):
        if not ctx.is_chief:
            return
        evaluate.wait_for_report(ctx)  # a complete run has its whole report
        run_dirs.mark_complete(ctx.run_dir, {"metrics": ctx.metrics, "export": ctx.export_path,
                                             "epochs": ctx.trainer.epoch})
        log.info(f"done in {ctx.seconds():.1f} s; TensorBoard: tensorboard --logdir {os.path.dirname(ctx.run_dir)}")
