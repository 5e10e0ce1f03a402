"""The training engine: phases in order, one set of callbacks, epochs continuing across phases.

Each phase (see `tl_app.recipe.Phase`) sets which layers train, gets a fresh
optimizer and trains for its epochs. A phase whose base is frozen and that
does not augment may train the head on features computed once
(`Phase.feature_cache`), which is the same model at a fraction of the cost.
"""
import numpy as np

from tl_app import log
from tl_app.optim import build_optimizer


def batched(dataset, batch_size, shuffle=False, seed=None, shuffle_buffer=10_000):
    """Batch (and for training, shuffle) an unbatched dataset; prefetch always."""
    import tensorflow as tf

    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def standard_callbacks(run_dir):
    """Callbacks every run has: TensorBoard scalars per epoch (loss, metrics, learning rate)."""
    import keras

    return [keras.callbacks.TensorBoard(log_dir=run_dir, write_graph=False, update_freq="epoch")]


def compile_for_phase(recipe, model, phase, steps_per_epoch=None):
    cfg = recipe.config
    model.compile(
        optimizer=build_optimizer(cfg, phase, steps_per_epoch),
        loss=recipe.loss(),
        metrics=recipe.metrics(),
        steps_per_execution=cfg.steps_per_execution,
    )


def extract_features(extractor, dataset, batch_size):
    """(features, labels) numpy arrays: one pass of the frozen extractor over `dataset`."""
    import tensorflow as tf

    call = tf.function(lambda x: extractor(x, training=False), reduce_retracing=True)
    features, labels = [], []
    for x, y in batched(dataset, batch_size):
        features.append(call(x).numpy())
        labels.append(y.numpy())
    return np.concatenate(features), np.concatenate(labels)


class Trainer:
    """Runs a recipe's phases on a built model.

    Args:
        recipe: the `Recipe` (its config, loss, metrics, augmentation, phases).
        data: the recipe's `DataSplits`.
        model: the full model built by `recipe.build_model` (inside the strategy scope).
        callbacks: Keras callbacks for every phase (TensorBoard, ...).
        strategy: the `tf.distribute` strategy the model was built under.
    """

    def __init__(self, recipe, data, model, callbacks, strategy=None):
        import tensorflow as tf

        self.recipe = recipe
        self.data = data
        self.model = model
        self.callbacks = list(callbacks)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.epoch = 0  # epochs completed over all phases

    def _train_dataset(self, phase):
        cfg = self.recipe.config
        ds = batched(self.data.train, cfg.batch_size, shuffle=True, seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer)
        return self.recipe.augment(ds) if phase.augment else ds

    def run_phase(self, phase):
        """Train one phase; returns its Keras History."""
        if phase.epochs <= 0:
            return None
        if phase.prepare is not None:
            phase.prepare(self.model)
        if phase.feature_cache is not None:
            if phase.augment:
                raise ValueError(f"phase '{phase.name}': a feature cache cannot augment; set augment=False")
            history = self._fit_on_features(phase)
        else:
            history = self._fit(phase)
        self.epoch += phase.epochs
        return history

    def _fit(self, phase):
        cfg = self.recipe.config
        log.info(f"phase '{phase.name}': {phase.epochs} epoch(s) at learning rate {phase.learning_rate:g}")
        with self.strategy.scope():
            compile_for_phase(self.recipe, self.model, phase)
        return self.model.fit(
            self._train_dataset(phase),
            validation_data=batched(self.data.validation, cfg.batch_size),
            initial_epoch=self.epoch,
            epochs=self.epoch + phase.epochs,
            callbacks=self.callbacks,
            shuffle=False,  # the dataset is shuffled already
            verbose=2,
        )

    def _fit_on_features(self, phase):
        import tensorflow as tf

        cfg = self.recipe.config
        cache = phase.feature_cache
        log.info(f"phase '{phase.name}': base frozen and no augmentation -> computing features once (feature cache)")
        train_x, train_y = extract_features(cache.extractor, self.data.train, cfg.batch_size)
        val_x, val_y = extract_features(cache.extractor, self.data.validation, cfg.batch_size)
        log.info(f"phase '{phase.name}': {phase.epochs} epoch(s) of the head on {len(train_x)} cached feature vectors")
        train = tf.data.Dataset.from_tensor_slices((train_x, train_y))
        val = tf.data.Dataset.from_tensor_slices((val_x, val_y))
        with self.strategy.scope():
            compile_for_phase(self.recipe, cache.head, phase)
        return cache.head.fit(
            batched(train, cfg.batch_size, shuffle=True, seed=cfg.seed, shuffle_buffer=len(train_x)),
            validation_data=batched(val, cfg.batch_size),
            initial_epoch=self.epoch,
            epochs=self.epoch + phase.epochs,
            callbacks=self.callbacks,
            shuffle=False,  # the dataset is shuffled already
            verbose=2,
        )

    def run_all(self):
        for phase in self.recipe.phases(self.model):
            self.run_phase(phase)

    def evaluate(self, dataset):
        """Loss and metrics of the full model on `dataset` (unbatched)."""
        cfg = self.recipe.config
        with self.strategy.scope():
            self.model.compile(loss=self.recipe.loss(), metrics=self.recipe.metrics())
        results = self.model.evaluate(batched(dataset, cfg.batch_size), return_dict=True, verbose=0)
        return {name: float(value) for name, value in results.items()}
