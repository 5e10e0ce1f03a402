"""The engine's Keras callbacks for resuming: per-epoch checkpoints and early stopping that survives a restart.

Both work under `model.fit` and under `engine.custom_loop` (which calls the
same hooks), so the two loops keep the same effects.
"""
import keras
import numpy as np

from tl_app.engine.checkpoints import TrainingState


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` whose counters and best weights go into checkpoints.

    Args:
        resume_state: counters from a checkpoint (`state()` of an earlier instance), applied
            when training begins.
        resume_best_weights: the best weights saved with those counters.
        **kwargs: EarlyStopping's arguments (monitor, patience, restore_best_weights, ...).
    """

    def __init__(self, resume_state=None, resume_best_weights=None, **kwargs):
        super().__init__(**kwargs)
        self._resume_state = resume_state or None
        self._resume_best_weights = resume_best_weights

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._resume_state:
            best = self._resume_state.get("best")
            self.best = None if best is None else float(best)
            self.wait = int(self._resume_state.get("wait", 0))
            self.best_epoch = int(self._resume_state.get("best_epoch", 0))
            self.best_weights = self._resume_best_weights
            self._resume_state = self._resume_best_weights = None

    def state(self):
        best = None if self.best is None else float(self.best)
        return {"best": best, "wait": int(self.wait), "best_epoch": int(self.best_epoch),
                "stopped": bool(self.stopped_epoch > 0)}


def flush_tensorboard(callbacks):
    """Flush the event files of TensorBoard callbacks so a kill loses no logged epoch."""
    for callback in callbacks:
        for writer in getattr(callback, "_writers", {}).values():
            writer.flush()


class EpochCheckpoint(keras.callbacks.Callback):
    """Write a checkpoint after every epoch and at the end of a phase.

    Args:
        store: the run's `CheckpointStore` (a temporary one on non-chief workers).
        full_model: the recipe's model (the fitted model may be a head on cached features).
        phase_index: index of the phase being trained.
        phase_start_epoch: global epoch at which this phase's first epoch was (TensorBoard step).
        early_stopping: the phase's `ResumableEarlyStopping`, or None.
        flush: callbacks whose event files are flushed before each checkpoint.
        task_variables: variables of the fitted model that `full_model` lacks (a phase task's own,
            e.g. a masked-LM head: `engine.phase_task.task_variables`), saved with every epoch.
        results: the Trainer's `results` (figures phases report), saved in every checkpoint's state.
        partial: the fitted model is a head on cached features whose variables are all `full_model`'s: the
            full model's weights are written once as the phase begins (`CheckpointStore.save_base`),
            each checkpoint holds the head's only (its other weights cannot change in the phase).
        resumed: the phase continues from a checkpoint of its own (its base, when partial, is written).
    """

    def __init__(self, store, full_model, phase_index, phase_start_epoch, early_stopping=None, flush=(),
                 task_variables=(), results=None, partial=False, resumed=False):
        super().__init__()
        self.store = store
        self.full_model = full_model
        self.phase_index = phase_index
        self.phase_start_epoch = phase_start_epoch
        self.early_stopping = early_stopping
        self.flush = list(flush)
        self.task_variables = list(task_variables)
        self.results = results if results is not None else {}
        self.partial = partial
        self.resumed = resumed
        self.epochs_done = None
        self.base = None  # with partial: (base file name, indices of the head's weights in the full model's)

    def on_train_begin(self, logs=None):
        import os

        from tl_app.engine.checkpoints import base_name

        self.epochs_done = None
        if not self.partial:
            return
        where = {id(v): i for i, v in enumerate(self.full_model.weights)}
        indices = [where.get(id(v)) for v in self.model.weights]
        if None in indices:
            raise ValueError(f"{self.model.name}: a partial checkpoint needs every variable of the fitted model in the "
                             "full model (a feature cache's head shares the full model's layers)")
        name = base_name(self.phase_index)
        if not (self.resumed and os.path.isfile(os.path.join(self.store.directory, name))):
            self.store.save_base(self.phase_index, self.full_model.get_weights())
        self.base = (name, indices)

    def _model_weights(self):
        """The full model's weights, or with `partial` those of the fitted head only."""
        if self.base is None:
            return self.full_model.get_weights()
        weights = self.full_model.weights
        return [np.array(weights[i]) for i in self.base[1]]

    def on_epoch_end(self, epoch, logs=None):
        flush_tensorboard(self.flush)
        self.epochs_done = epoch + 1
        es = self.early_stopping
        state = TrainingState(
            phase=self.phase_index,
            phase_epochs_done=epoch + 1 - self.phase_start_epoch,
            epoch=epoch + 1,
            early_stopping=es.state() if es is not None else {},
            results=dict(self.results),
        )
        optimizer_weights = [np.array(v) for v in self.model.optimizer.variables]
        best = es.best_weights if es is not None and es.restore_best_weights else None
        self.store.save(state, self._model_weights(), optimizer_weights, best,
                        [np.array(v) for v in self.task_variables], base=self.base)

    def on_train_end(self, logs=None):
        if self.epochs_done is None:
            return  # no epoch finished: the last epoch checkpoint stands
        # After early stopping restored its best weights: the next phase starts from these.
        state = TrainingState(phase=self.phase_index + 1, phase_epochs_done=0, epoch=self.epochs_done,
                              results=dict(self.results))
        self.store.save(state, self._model_weights(), base=self.base)
