"""The `train` stage: build the model under the strategy, start it from an export or a checkpoint, run every phase."""
import os

from tl_app import log
from tl_app.engine import trainer as trainer_lib
from tl_app.errors import UserError
from tl_app.pipeline.context import Stage


def _load_init_weights(model, weights, path):
    try:
        model.load_weights(weights)
    except ValueError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:2] if line.strip())
        raise UserError(f"--init-from {path}: its weights do not fit this model ({detail}); "
                        "use the config the export was made with.") from None


def build_model(ctx):
    """The recipe's model, built inside the strategy's scope, with `--init-from` weights when given."""
    with ctx.choice.strategy.scope():
        ctx.model = ctx.recipe.build_model(ctx.data)
    if ctx.init_weights:
        _load_init_weights(ctx.model, ctx.init_weights, ctx.options.init_from)
        log.info(f"initial weights from the export {ctx.options.init_from}")


def _forget_logged_after(run_dir, epoch):
    """Epochs the killed run logged but did not checkpoint are trained again: drop their TensorBoard values."""
    from tl_app.engine.epoch_tensorboard import drop_steps_from

    removed = sum(drop_steps_from(os.path.join(run_dir, split), epoch) for split in ("train", "validation"))
    if removed:
        log.info(f"removed {removed} TensorBoard value(s) logged after the checkpoint: epoch {epoch + 1} on is"
                 " trained (and logged) again")


def make_trainer(ctx):
    """The Trainer: standard callbacks, a checkpoint after every epoch, and the checkpoint to resume from."""
    from tl_app.engine.checkpoints import CheckpointStore

    resume_from = CheckpointStore(os.path.join(ctx.continuing, "checkpoints")).load() if ctx.continuing else None
    if resume_from is not None:
        s = resume_from.state
        log.info(f"resuming {ctx.run_dir} from {os.path.basename(resume_from.path)}: phase {s.phase + 1}, "
                 f"{s.phase_epochs_done} of its epochs done, {s.epoch} epoch(s) in all")
    elif ctx.continuing:
        log.info(f"continuing {ctx.run_dir}: it has no checkpoint yet, training from the start")
    if ctx.continuing and ctx.is_chief:
        _forget_logged_after(ctx.run_dir, resume_from.state.epoch if resume_from else 0)
    # Looked up on the module at run time, so a test (or a plugin) can add callbacks there.
    callbacks = trainer_lib.standard_callbacks(ctx.write_dir)
    ctx.trainer = trainer_lib.Trainer(ctx.recipe, ctx.data, ctx.model, callbacks, ctx.choice.strategy,
                                      checkpoints=CheckpointStore(os.path.join(ctx.write_dir, "checkpoints")),
                                      resume=resume_from, loop=ctx.options.loop)


class Train(Stage):
    """Build the model, then run the recipe's phases in order (continuing a resumed run where it stopped)."""

    name = "train"

    def run(self, ctx):
        if ctx.model is None:  # the inspect stage builds it first when it reads the base's features
            build_model(ctx)
        make_trainer(ctx)
        ctx.trainer.run_all()
