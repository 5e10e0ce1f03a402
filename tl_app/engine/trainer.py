"""The training engine: phases in order, one set of callbacks, epochs continuing across phases.

Each phase (see `tl_app.recipe.Phase`) sets which layers train, gets a fresh
optimizer (`engine.optimizers`: optimizer, schedule with warmup, weight decay,
clipping) and trains for its epochs. A phase whose base is frozen and that
does not augment may train the head on features computed once
(`Phase.feature_cache`, `engine.features`), which is the same model at a
fraction of the cost. A phase with a `task` (`engine.phase_task.PhaseTask`)
trains another model that shares layers with the recipe's (e.g. a masked-LM
around a text encoder), on the task's own data, loss and metrics.

Every epoch ends with a checkpoint (`engine.checkpoints`) when the run has a
checkpoint store, so a killed run resumes at the right phase and epoch.
Callbacks that define `on_phase_begin(info)` / `on_phase_end(info, model)` hear
of each phase (`PhaseInfo`), after early stopping has restored its best weights.
A quality gate that a run misses sends it back to fine-tuning
(`run_retry_round`): each round is one more phase, so a killed run resumes
inside its round.
Under `MultiWorkerMirroredStrategy` the phases train with
`engine.custom_loop` (Keras 3 `fit` cannot), with the same callbacks.

`batch_size` is the global batch: each of N replicas trains on batch_size / N.
"""
import dataclasses
import sys
from typing import Any, List

from tl_app import log
from tl_app.engine.checkpoints import TrainingState, restore_optimizer, restore_variables
from tl_app.engine.datasets import balanced_class_weights, batched, count_batches, labels_of
from tl_app.engine.feature_store import FeatureStore
from tl_app.engine.features import split_features
from tl_app.engine.losses import training_loss
from tl_app.engine.optimizers import build_optimizer, check_options
from tl_app.engine.phase_task import task_variables
from tl_app.engine.strategies import is_tpu
from tl_app.errors import UserError

LOOPS = ("auto", "fit", "custom")
RETRY_PHASE = "gate_retry"  # retry round r trains phase `gate_retry_<r>`


@dataclasses.dataclass
class PhaseInfo:
    """What a phase-aware callback hears of a phase.

    Args:
        index: the phase's index (retry rounds follow the recipe's phases).
        phase: the `Phase` (name, epochs, learning rate).
        first_epoch: global epoch (TensorBoard step) of the phase's first epoch.
        validation: the batched validation data the phase's model sees (cached features or raw inputs).
        class_names: index = label.
        last_epoch: global epoch of the phase's last epoch (set when the phase ends).
        replica_batch_size: examples per call for predictions outside the strategy (on one device): the
            per-replica share of the global batch, which one device is sized for.
        resumed: the phase continues after a restart (the killed run logged its beginning).
    """

    index: int
    phase: Any
    first_epoch: int
    validation: Any
    class_names: List[str]
    last_epoch: int = -1
    replica_batch_size: int = 32
    resumed: bool = False


def standard_callbacks(run_dir):
    """Callbacks every run has: TensorBoard scalars per epoch (loss, metrics, learning rate)."""
    from tl_app.engine.epoch_tensorboard import EpochTensorBoard

    return [EpochTensorBoard(run_dir)]


def compile_for_phase(recipe, model, phase, steps_per_epoch=None):
    """Compile `model` for `phase`: fresh optimizer, the training loss (label smoothing), the recipe's metrics
    (or, for a phase with a task, the task's loss and metrics)."""
    from tl_app.engine.metrics import keras_metrics

    cfg = recipe.config
    losses = phase.task.compile_args() if phase.task is not None else {
        "loss": training_loss(recipe.loss(), cfg.label_smoothing),
        "metrics": keras_metrics(recipe.metrics(), model.output_shape[-1])}
    model.compile(
        optimizer=build_optimizer(cfg, phase, steps_per_epoch, model=model),
        steps_per_execution=cfg.steps_per_execution,
        **losses,
    )


def is_multi_worker(strategy):
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


class Trainer:
    """Runs a recipe's phases on a built model.

    Args:
        recipe: the `Recipe` (its config, loss, metrics, augmentation, phases).
        data: the recipe's `DataSplits`.
        model: the full model built by `recipe.build_model` (inside the strategy scope).
        callbacks: Keras callbacks for every phase (TensorBoard, ...).
        strategy: the `tf.distribute` strategy the model was built under.
        checkpoints: a `CheckpointStore` to write a checkpoint after every epoch, or None.
        resume: a `Checkpoint` to continue from (weights, optimizer state, phase and epoch), or None.
        loop: `fit` (Keras), `custom` (`engine.custom_loop`) or `auto` (custom under multi-worker).
    """

    def __init__(self, recipe, data, model, callbacks, strategy=None, checkpoints=None, resume=None, loop="auto"):
        import tensorflow as tf

        if loop not in LOOPS:
            raise ValueError(f"loop must be one of {LOOPS}, not {loop!r}")
        self.recipe = recipe
        self.data = data
        self.model = model
        self.callbacks = list(callbacks)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.checkpoints = checkpoints
        self.resume = resume
        self.custom = loop == "custom" or (loop == "auto" and is_multi_worker(self.strategy))
        self.state = TrainingState()
        self.phases = None  # the recipe's phases, once run_all has asked for them
        # Figures phases report (e.g. perplexity before and after adaptation); kept in every checkpoint.
        self.results = {}
        self._class_weight = None
        if resume is not None:
            self.state = resume.state
            self.results = dict(resume.state.results)
            self.model.set_weights(resume.model_weights)

    @property
    def replica_batch_size(self):
        """The per-replica share of the global batch: the batch of predictions made on one device."""
        return max(1, self.recipe.config.batch_size // self.strategy.num_replicas_in_sync)

    @property
    def epoch(self):
        """Epochs completed over all phases (the next epoch's TensorBoard step)."""
        return self.state.epoch

    # ---- data ------------------------------------------------------------------
    def _train_dataset(self, phase):
        cfg = self.recipe.config
        ds = batched(self.data.train, cfg.batch_size, shuffle=True, seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer,
                     drop_remainder=is_tpu(self.strategy))
        return self.recipe.augment(ds) if phase.augment else ds

    def class_weight(self):
        """`{class: weight}` for config class_weight='auto' (balanced from the train labels), else None."""
        cfg = self.recipe.config
        if cfg.class_weight != "auto" or self.recipe.weighs_classes_in_loss():
            return None
        if self._class_weight is None:
            self._class_weight = balanced_class_weights(labels_of(self.data.train), len(self.data.class_names))
            shown = ", ".join(f"{c}: {w:.2f}" for c, w in self._class_weight.items())
            log.info(f"class weights (balanced from the train labels): {shown}")
        return self._class_weight

    def _phase_data(self, phase, done=0):
        """(model to fit, train batches, validation batches, steps per epoch or None) for the phase:
        raw inputs, cached features, or the data of the phase's task (from its epoch `done` on)."""
        from tl_app.data.arrays import tensor_slices

        cfg = self.recipe.config
        if phase.task is not None:
            train, steps = phase.task.train_data(cfg.batch_size, done, phase.epochs, drop_remainder=is_tpu(self.strategy))
            return self._phase_target(phase), train, phase.task.validation_data(cfg.batch_size), steps
        if phase.feature_cache is None:
            return self.model, self._train_dataset(phase), batched(self.data.validation, cfg.batch_size), None
        if phase.augment:
            raise ValueError(f"phase '{phase.name}': a feature cache cannot augment; set augment=False")
        cache = phase.feature_cache
        log.info(f"phase '{phase.name}': base frozen and no augmentation -> computing features once (feature cache)")
        store = FeatureStore() if cfg.keep_features else None
        features = split_features(cache.extractor, {"train": self.data.train, "validation": self.data.validation},
                                  cfg.batch_size, store)
        (train_x, train_y), (val_x, val_y) = features["train"], features["validation"]
        log.info(f"phase '{phase.name}': training the head on {len(train_x)} cached feature vectors")
        train, val = tensor_slices((train_x, train_y)), tensor_slices((val_x, val_y))  # batched by index
        return (cache.head,
                batched(train, cfg.batch_size, shuffle=True, seed=cfg.seed, shuffle_buffer=len(train_x),
                        drop_remainder=is_tpu(self.strategy)),
                batched(val, cfg.batch_size), None)

    # ---- phases ------------------------------------------------------------------
    def _early_stopping(self, resuming, phase):
        from tl_app.engine.metrics import monitor_mode
        from tl_app.engine.resume_callbacks import ResumableEarlyStopping

        cfg = self.recipe.config
        if cfg.early_stopping_patience is None:
            return None
        if phase.task is not None and cfg.early_stopping_monitor.removeprefix("val_") not in ("loss", *phase.task.metric_names):
            log.info(f"phase '{phase.name}': no early stopping (it does not log {cfg.early_stopping_monitor})")
            return None
        return ResumableEarlyStopping(
            monitor=cfg.early_stopping_monitor,
            mode=monitor_mode(cfg.early_stopping_monitor),  # the custom loop's model has no built metrics to ask
            patience=cfg.early_stopping_patience,
            restore_best_weights=cfg.restore_best_weights,
            resume_state=self.resume.state.early_stopping if resuming else None,
            resume_best_weights=self.resume.best_weights if resuming else None,
        )

    def _finish_from_checkpoint(self, phase, index, target):
        """The checkpoint says this phase ended (all epochs, or early stopping): apply its best weights."""
        cfg = self.recipe.config
        if cfg.early_stopping_patience is not None and cfg.restore_best_weights and self.resume.best_weights:
            target.set_weights(self.resume.best_weights)
        log.info(f"phase '{phase.name}': finished before the restart")
        self.state = TrainingState(phase=index + 1, phase_epochs_done=0, epoch=self.state.epoch)

    def run_phase(self, phase, index=None):
        """Train one phase (continuing it when the resume checkpoint stopped inside it); returns its History."""
        from tl_app.engine.resume_callbacks import EpochCheckpoint

        index = self.state.phase if index is None else index
        resuming = self.resume is not None and self.state.phase == index and self.state.phase_epochs_done > 0
        done = self.state.phase_epochs_done if resuming else 0
        if phase.epochs - done <= 0 and not resuming:
            self.state = TrainingState(phase=index + 1, epoch=self.state.epoch)
            return None
        if phase.prepare is not None:
            phase.prepare(self.model)
        stopped = resuming and self.resume.state.early_stopping.get("stopped", False)
        if resuming and (done >= phase.epochs or stopped):
            # Killed between the phase's last epoch and its end-of-phase checkpoint.
            self._finish_from_checkpoint(phase, index, self._phase_target(phase))
            return None
        target, train, validation, steps = self._phase_data(phase, done)
        steps = steps or count_batches(train)
        own = task_variables(target, self.model) if phase.task is not None else []
        with self.strategy.scope():
            compile_for_phase(self.recipe, target, phase, steps)
            if resuming:
                restore_variables(own, self.resume.task_weights, f"phase '{phase.name}' model")
                restore_optimizer(target.optimizer, target.trainable_variables, self.resume.optimizer_weights)
        left = phase.epochs - done
        where = f" (resuming after epoch {done} of it)" if resuming else ""
        log.info(f"phase '{phase.name}': {left} epoch(s) at learning rate {phase.learning_rate:g}, "
                 f"{steps} steps per epoch{where}")
        callbacks = list(self.callbacks)
        early = self._early_stopping(resuming, phase)
        if early is not None:
            callbacks.append(early)
        if phase.task is not None:  # after early stopping (its best weights are back when they end), before the checkpoint
            callbacks += phase.task.callbacks(self.results, self.state.epoch - done, self.callbacks)
        if self.checkpoints is not None:
            # A head on cached features: the rest of the model is written once, not every epoch.
            partial = phase.feature_cache is not None and phase.task is None
            callbacks.append(EpochCheckpoint(self.checkpoints, self.model, index, self.state.epoch - done, early,
                                             flush=self.callbacks, task_variables=own, results=self.results,
                                             partial=partial, resumed=resuming))
        info = PhaseInfo(index, phase, self.state.epoch - done, validation, list(self.data.class_names),
                         replica_batch_size=self.replica_batch_size, resumed=resuming)
        self._tell(callbacks, "on_phase_begin", info)
        history = self._train(target, train, validation, callbacks, left, steps if phase.task is not None else None)
        self.state = TrainingState(phase=index + 1, phase_epochs_done=0, epoch=self.state.epoch + len(history.epoch))
        info.last_epoch = self.state.epoch - 1
        self._tell(callbacks, "on_phase_end", info, target)  # after early stopping restored the best weights
        return history

    @staticmethod
    def _tell(callbacks, hook, *args):
        for callback in callbacks:
            if hasattr(callback, hook):
                getattr(callback, hook)(*args)

    def _phase_target(self, phase):
        """The model a phase fits: its task's, its cached-feature head, or the recipe's model."""
        if phase.task is not None:
            with self.strategy.scope():
                return phase.task.build()
        return phase.feature_cache.head if phase.feature_cache else self.model

    def _train(self, target, train, validation, callbacks, epochs, steps_per_epoch=None):
        """Fit `target`; `steps_per_epoch` when one dataset holds every epoch (a phase task's data)."""
        start = self.state.epoch
        if self.custom:
            from tl_app.engine.custom_loop import CustomLoop

            if self.recipe.config.steps_per_execution > 1:
                log.info("steps_per_execution applies to Keras fit only; the custom loop runs one step per call")
            loop = CustomLoop(target, self.strategy, target.loss, self.recipe.metrics(), self.class_weight(),
                              progress=sys.stdout.isatty())
            return loop.fit(train, validation, initial_epoch=start, epochs=start + epochs, callbacks=callbacks)
        return target.fit(
            train,
            validation_data=validation,
            initial_epoch=start,
            epochs=start + epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            class_weight=None if steps_per_epoch else self.class_weight(),  # a task weighs its own samples
            shuffle=False,  # the dataset is shuffled already
            verbose=1 if sys.stdout.isatty() else 2,  # a progress bar per batch on a terminal, else a line per epoch
        )

    def run_all(self):
        """Run every phase in order, skipping those a resume checkpoint has finished."""
        phases = self.phases = self.recipe.phases(self.model)
        check_options(self.recipe.config, phases)
        tasks = [p.name for p in phases if p.task is not None]
        if self.custom and tasks:
            raise UserError(f"phase '{tasks[0]}' trains its own model with its own metrics, which the custom training"
                            " loop (multi-worker) cannot; use --strategy one_device or mirrored for this run.")
        for index, phase in enumerate(phases):
            if index < self.state.phase:
                if phase.prepare is not None:  # later phases may build on the trainable set it left
                    phase.prepare(self.model)
                continue
            self.run_phase(phase, index)
        if self.state.phase >= len(phases) and self.state.phase_epochs_done > 0:
            # Killed inside a gate retry round: finish that round before anything is evaluated.
            round_number = self.state.phase - len(phases) + 1
            log.info(f"resuming gate retry round {round_number}")
            self.run_phase(self.retry_phase(round_number), self.state.phase)

    # ---- gate retry rounds --------------------------------------------------------
    @property
    def rounds_done(self):
        """Gate retry rounds completed (after `run_all`): they are the phases after the recipe's."""
        return max(0, self.state.phase - len(self.phases))

    def phase_names(self):
        """Names by phase index: the recipe's phases, then the gate retry rounds (as far as they went)."""
        names = [phase.name for phase in self.phases or []]
        return names + [f"{RETRY_PHASE}_{r}" for r in range(1, self.rounds_done + 2)] if self.phases else names

    def retry_phase(self, round_number):
        """Retry round `round_number` (1, 2, ...): the last phase again, at half the previous round's learning rate.

        The last phase is the fine-tuning one when the recipe has one (for `fine_tune_epochs` more
        epochs), else the head phase (for its own epochs again); it continues from the current weights.
        """
        last = self.phases[-1]
        fine_tune_epochs = getattr(self.recipe.config, "fine_tune_epochs", 0) if len(self.phases) > 1 else 0
        return dataclasses.replace(last, name=f"{RETRY_PHASE}_{round_number}", epochs=fine_tune_epochs or last.epochs,
                                   learning_rate=last.learning_rate / 2 ** round_number)

    def run_retry_round(self):
        """Train the next gate retry round; returns its number."""
        round_number = self.rounds_done + 1
        phase = self.retry_phase(round_number)
        log.info(f"gate retry round {round_number}: phase '{phase.name}', {phase.epochs} more epoch(s) of "
                 f"'{self.phases[-1].name}' at learning rate {phase.learning_rate:g}")
        self.run_phase(phase, len(self.phases) + round_number - 1)
        return round_number

    def evaluate(self, dataset):
        """Loss and metrics of the full model on `dataset` (unbatched)."""
        from tl_app.engine.metrics import keras_metrics

        cfg = self.recipe.config
        with self.strategy.scope():
            self.model.compile(loss=self.recipe.loss(),
                               metrics=keras_metrics(self.recipe.metrics(), self.model.output_shape[-1]))
        if self.custom:
            from tl_app.engine.custom_loop import CustomLoop

            loop = CustomLoop(self.model, self.strategy, self.model.loss, self.recipe.metrics())
            return loop.evaluate(batched(dataset, cfg.batch_size))
        results = self.model.evaluate(batched(dataset, cfg.batch_size), return_dict=True, verbose=0)
        return {name: float(value) for name, value in results.items()}
