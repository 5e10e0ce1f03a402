"""The `serving_check` stage: nothing is published that a model server does not answer correctly.

It runs before training: it starts a fresh `tl-app serve` process (`tl_app.serve.check`), so that
the server's start-up (importing TensorFlow, seconds) overlaps training, evaluation and export
(the idle server waits on an empty staging directory), and adds a check to `ctx.before_publish`. The export stage runs that check on the complete export before it
takes a version: the server loads it (replaying its warmup requests), each warmup request goes over
REST and gRPC, and the answers must equal the in-process model's. A failure raises
`ServingCheckFailed` (exit code 4, one line saying what differed) and nothing is published.
Skipped with `--no-serving-check`, `--no-export`, and on non-chief workers.
"""
import time

from tl_app import log
from tl_app.pipeline.context import Stage


def in_process_model(ctx):
    """`(signature_name, inputs) -> outputs`: the export's signatures run on the trained model in this process."""
    import tensorflow as tf

    from tl_app.pipeline.export import export_signatures

    signatures = export_signatures(ctx)

    def run(signature_name, inputs):
        signature = signatures[signature_name]
        args = [tf.constant(inputs[spec.name]) for spec in signature.input_signature]
        return {name: value.numpy() for name, value in signature.fn(*args).items()}

    return run


class ServingCheck(Stage):
    name = "serving_check"

    def enabled(self, ctx):
        return ctx.options.export and ctx.options.serving_check and ctx.is_chief

    def run(self, ctx):
        from tl_app.errors import UserError
        from tl_app.serve.check import ServingChecker

        if ctx.options.warmup_examples == 0:  # found now, not after training
            raise UserError("--warmup-examples 0 leaves the serving check no requests to replay; write at least 1, "
                            "or skip the check with --no-serving-check.")
        checker = ServingChecker(ctx.recipe.name).start()
        ctx.closing.callback(checker.close)

        def check(export_dir):
            started = time.perf_counter()
            count = checker.check(export_dir, in_process_model(ctx))
            checker.close()  # its work is done: free its memory and CPU for the rest of the run
            log.info(f"serving check passed: {count} warmup request(s) over REST and gRPC answered as the in-process "
                     f"model (a fresh tl-app serve; {time.perf_counter() - started:.1f} s at export, server started "
                     f"{started - checker.started_at:.1f} s before)")

        ctx.before_publish.append(check)
