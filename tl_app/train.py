"""The training engine: phases in order, one set of callbacks, epochs continuing across phases.

Each phase (see `tl_app.recipe.Phase`) sets which layers train, gets a fresh
optimizer (`tl_app.optim`: optimizer, schedule with warmup, weight decay,
clipping) and trains for its epochs. A phase whose base is frozen and that
does not augment may train the head on features computed once
(`Phase.feature_cache`), which is the same model at a fraction of the cost.

Every epoch ends with a checkpoint (`tl_app.checkpoint`) when the run has a
checkpoint store, so a killed run resumes at the right phase and epoch.
Under `MultiWorkerMirroredStrategy` the phases train with
`tl_app.custom_loop` (Keras 3 `fit` cannot), with the same callbacks.

`batch_size` is the global batch: each of N replicas trains on batch_size / N.
"""
import numpy as np

from tl_app import log
from tl_app.checkpoint import TrainingState, restore_optimizer
from tl_app.distribute import is_tpu, with_data_sharding
from tl_app.feature_store import FeatureStore, split_key
from tl_app.losses import training_loss
from tl_app.optim import build_optimizer, check_options

LOOPS = ("auto", "fit", "custom")


def batched(dataset, batch_size, shuffle=False, seed=None, shuffle_buffer=10_000, drop_remainder=False):
    """Batch (and for training, shuffle) an unbatched dataset; prefetch always; shard by element.

    Args:
        dataset: unbatched `(inputs, label)` data.
        batch_size: the GLOBAL batch size (a strategy splits each batch across its replicas).
        shuffle: shuffle before batching (training), reshuffled every epoch.
        seed: the shuffle's seed.
        shuffle_buffer: elements the shuffle draws from.
        drop_remainder: drop the last partial batch (TPUs need static batch shapes).
    """
    import tensorflow as tf

    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return with_data_sharding(dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE))


def standard_callbacks(run_dir):
    """Callbacks every run has: TensorBoard scalars per epoch (loss, metrics, learning rate)."""
    from tl_app.epoch_tensorboard import EpochTensorBoard

    return [EpochTensorBoard(run_dir)]


def compile_for_phase(recipe, model, phase, steps_per_epoch=None):
    """Compile `model` for `phase`: fresh optimizer, the training loss (label smoothing), the recipe's metrics."""
    cfg = recipe.config
    model.compile(
        optimizer=build_optimizer(cfg, phase, steps_per_epoch, model=model),
        loss=training_loss(recipe.loss(), cfg.label_smoothing),
        metrics=recipe.metrics(),
        steps_per_execution=cfg.steps_per_execution,
    )


def inference_function(extractor, *element_specs):
    """`extractor` in inference mode, traced once for batches of any size of inputs fitting all `element_specs`.

    One trace serves every split and the last partial batch (tracing MobileNetV2 costs about a second).
    """
    import tensorflow as tf

    def batch_of(spec, *others):
        common = spec.most_specific_common_supertype(others) if others else spec
        return tf.TensorSpec([None, *common.shape], common.dtype)

    signature = [tf.nest.map_structure(batch_of, *element_specs)]
    return tf.function(lambda x: extractor(x, training=False), input_signature=signature)


def extract_features(call, dataset, batch_size):
    """(features, labels) numpy arrays: one pass of `call` (an `inference_function`) over `dataset`."""
    features, labels = [], []
    for x, y in batched(dataset, batch_size):
        features.append(call(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(features), np.concatenate(labels)


def cached_features(extractor, dataset, batch_size, store=None, split="train", call=None):
    """(features, labels) of `dataset`: from `store` when it holds them, else extracted (and kept when `store`).

    `call`: the extractor's `inference_function` to reuse across splits; None traces one.
    """
    call = call or inference_function(extractor, dataset.element_spec[0])
    if store is None:
        return extract_features(call, dataset, batch_size)
    key = split_key(store.extractor_hash(extractor), dataset)
    kept = store.load(key)
    if kept is not None:
        log.info(f"{split}: reused {len(kept[0])} feature vectors kept by an earlier run ({store.path(key)})")
        return kept
    features, labels = extract_features(call, dataset, batch_size)
    path = store.save(key, features, labels)
    if path is not None:
        log.info(f"{split}: kept {len(features)} feature vectors ({features.nbytes / 2**20:.1f} MB) in {path}"
                 " for later runs on the same data and base (--set keep_features=false to not keep them)")
    return features, labels


def count_batches(batched_dataset):
    """Batches per epoch: the dataset's cardinality, or one counting pass when it is unknown."""
    import tensorflow as tf

    n = int(batched_dataset.cardinality())
    if n >= 0:
        return n
    if n == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError("the training dataset is infinite; a phase needs a finite epoch")
    log.info("training data size unknown: counting its batches once (for the learning-rate schedule)")
    return int(batched_dataset.reduce(np.int64(0), lambda n, _: n + 1))


def labels_of(dataset):
    """All labels of an unbatched `(inputs, label)` dataset as a numpy array."""
    return np.concatenate([y.numpy().reshape(-1) for y in dataset.map(lambda x, y: y).batch(4096)])


def balanced_class_weights(labels, num_classes):
    """{class: n / (num_classes * count)} as scikit-learn's 'balanced'; 1.0 for classes absent from `labels`."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)
    present = counts > 0
    n, k = counts.sum(), int(present.sum())
    return {c: (float(n) / (k * counts[c]) if counts[c] else 1.0) for c in range(num_classes)}


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
        loop: `fit` (Keras), `custom` (`tl_app.custom_loop`) or `auto` (custom under multi-worker).
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
        self._class_weight = None
        if resume is not None:
            self.state = resume.state
            self.model.set_weights(resume.model_weights)

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
        if cfg.class_weight != "auto":
            return None
        if self._class_weight is None:
            self._class_weight = balanced_class_weights(labels_of(self.data.train), len(self.data.class_names))
            shown = ", ".join(f"{c}: {w:.2f}" for c, w in self._class_weight.items())
            log.info(f"class weights (balanced from the train labels): {shown}")
        return self._class_weight

    def _phase_data(self, phase):
        """(model to fit, train batches, validation batches) for the phase: raw inputs or cached features."""
        import tensorflow as tf

        cfg = self.recipe.config
        if phase.feature_cache is None:
            return self.model, self._train_dataset(phase), batched(self.data.validation, cfg.batch_size)
        if phase.augment:
            raise ValueError(f"phase '{phase.name}': a feature cache cannot augment; set augment=False")
        cache = phase.feature_cache
        log.info(f"phase '{phase.name}': base frozen and no augmentation -> computing features once (feature cache)")
        store = FeatureStore() if cfg.keep_features else None
        call = inference_function(cache.extractor, self.data.train.element_spec[0], self.data.validation.element_spec[0])
        train_x, train_y = cached_features(cache.extractor, self.data.train, cfg.batch_size, store, "train", call)
        val_x, val_y = cached_features(cache.extractor, self.data.validation, cfg.batch_size, store, "validation", call)
        log.info(f"phase '{phase.name}': training the head on {len(train_x)} cached feature vectors")
        train = tf.data.Dataset.from_tensor_slices((train_x, train_y))
        val = tf.data.Dataset.from_tensor_slices((val_x, val_y))
        return (cache.head,
                batched(train, cfg.batch_size, shuffle=True, seed=cfg.seed, shuffle_buffer=len(train_x),
                        drop_remainder=is_tpu(self.strategy)),
                batched(val, cfg.batch_size))

    # ---- phases ------------------------------------------------------------------
    def _early_stopping(self, resuming):
        from tl_app.resume_callbacks import ResumableEarlyStopping

        cfg = self.recipe.config
        if cfg.early_stopping_patience is None:
            return None
        return ResumableEarlyStopping(
            monitor=cfg.early_stopping_monitor,
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
        from tl_app.resume_callbacks import EpochCheckpoint

        index = self.state.phase if index is None else index
        cfg = self.recipe.config
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
            self._finish_from_checkpoint(phase, index, phase.feature_cache.head if phase.feature_cache else self.model)
            return None
        target, train, validation = self._phase_data(phase)
        steps = count_batches(train)
        with self.strategy.scope():
            compile_for_phase(self.recipe, target, phase, steps)
            if resuming:
                restore_optimizer(target.optimizer, target.trainable_variables, self.resume.optimizer_weights)
        left = phase.epochs - done
        where = f" (resuming after epoch {done} of it)" if resuming else ""
        log.info(f"phase '{phase.name}': {left} epoch(s) at learning rate {phase.learning_rate:g}, "
                 f"{steps} steps per epoch{where}")
        callbacks = list(self.callbacks)
        early = self._early_stopping(resuming)
        if early is not None:
            callbacks.append(early)
        if self.checkpoints is not None:
            callbacks.append(EpochCheckpoint(self.checkpoints, self.model, index, self.state.epoch - done, early,
                                             flush=self.callbacks))
        history = self._train(target, train, validation, callbacks, left)
        self.state = TrainingState(phase=index + 1, phase_epochs_done=0, epoch=self.state.epoch + len(history.epoch))
        return history

    def _train(self, target, train, validation, callbacks, epochs):
        start = self.state.epoch
        if self.custom:
            from tl_app.custom_loop import CustomLoop

            if self.recipe.config.steps_per_execution > 1:
                log.info("steps_per_execution applies to Keras fit only; the custom loop runs one step per call")
            loop = CustomLoop(target, self.strategy, target.loss, self.recipe.metrics(), self.class_weight())
            return loop.fit(train, validation, initial_epoch=start, epochs=start + epochs, callbacks=callbacks)
        return target.fit(
            train,
            validation_data=validation,
            initial_epoch=start,
            epochs=start + epochs,
            callbacks=callbacks,
            class_weight=self.class_weight(),
            shuffle=False,  # the dataset is shuffled already
            verbose=2,
        )

    def run_all(self):
        """Run every phase in order, skipping those a resume checkpoint has finished."""
        phases = self.recipe.phases(self.model)
        check_options(self.recipe.config, phases)
        for index, phase in enumerate(phases):
            if index < self.state.phase:
                if phase.prepare is not None:  # later phases may build on the trainable set it left
                    phase.prepare(self.model)
                continue
            self.run_phase(phase, index)

    def evaluate(self, dataset):
        """Loss and metrics of the full model on `dataset` (unbatched)."""
        cfg = self.recipe.config
        with self.strategy.scope():
            self.model.compile(loss=self.recipe.loss(), metrics=self.recipe.metrics())
        if self.custom:
            from tl_app.custom_loop import CustomLoop

            loop = CustomLoop(self.model, self.strategy, self.model.loss, self.recipe.metrics())
            return loop.evaluate(batched(dataset, cfg.batch_size))
        results = self.model.evaluate(batched(dataset, cfg.batch_size), return_dict=True, verbose=0)
        return {name: float(value) for name, value in results.items()}
