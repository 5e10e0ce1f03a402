"""A training loop with `strategy.run` for strategies Keras 3 `fit` cannot drive.

Keras 3 `model.fit` fails under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585, tensorflow/tensorflow#72388); this loop does the same
work with `strategy.run` / `strategy.reduce` over distributed datasets and
calls the same Keras callbacks (`CallbackList`), so TensorBoard scalars
(`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate` in train/ and
validation/), checkpoints and early stopping behave as under `fit`.

It reports the loss, accuracy and macro F1 (`f1_macro`): each step sums the
loss and a confusion matrix over the batch, the sums are reduced across
replicas and workers, and the epoch's figures come from the summed counts
(macro F1 through the same Keras metric `fit` uses, `engine.metrics`).
On a terminal each epoch shows a per-batch progress bar.
`steps_per_execution` does not apply (one step per call).
"""
import keras
import numpy as np

from tl_app import log
from tl_app.engine.metrics import F1_MACRO, MacroF1Score, f1_from_confusion, name_of
from tl_app.engine.strategies import distribute_dataset
from tl_app.errors import ClusterError, UserError

ACCURACY_NAMES = ("accuracy", "acc", "sparse_categorical_accuracy")


def metric_names(metrics):
    """The log names of the recipe's metrics the loop computes; UserError for others."""
    names = []
    for metric in metrics or []:
        name = name_of(metric)
        if isinstance(metric, keras.metrics.SparseCategoricalAccuracy) or name in ACCURACY_NAMES:
            names.append("accuracy" if name in ("acc",) else name)
        elif isinstance(metric, MacroF1Score) or name == F1_MACRO:
            names.append(name)
        else:
            raise UserError(f"metric {name!r}: the custom training loop (multi-worker) reports loss, accuracy and "
                            f"{F1_MACRO} only.")
    return names


def _telling_line(message):
    """The line of a TensorFlow error that says what happened (the first is often 'Graph execution error:')."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if any(word in line for word in ("unhealthy", "reset by peer", "aborted", "timed out", "Deadline", "Socket closed")):
            return line[:300]
    return lines[0][:300] if lines else "no detail"


def _unreduced(loss_fn):
    """Per-example loss: Keras losses compute it in `call` before reduction."""
    if isinstance(loss_fn, keras.losses.Loss):
        return loss_fn.call
    return keras.losses.get(loss_fn)


class CustomLoop:
    """Trains and evaluates a compiled Keras model with `strategy.run`.

    Args:
        model: a model compiled with its optimizer (the loop reads `model.optimizer`).
        strategy: the strategy the model was built under.
        loss_fn: the training loss (a Keras loss object).
        metrics: the recipe's metrics (see `metric_names`).
        class_weight: {class: weight} or None.
        progress: show a per-batch progress bar each epoch (on a terminal).
    """

    def __init__(self, model, strategy, loss_fn, metrics, class_weight=None, progress=False):
        import tensorflow as tf

        self.model = model
        self.num_classes = int(model.output_shape[-1])
        self.progress = progress
        self.strategy = strategy
        self.per_example_loss = _unreduced(loss_fn)
        self.metric_names = metric_names(metrics)
        self.weights_table = None
        if class_weight:
            table = np.ones(max(class_weight) + 1, np.float32)
            for k, w in class_weight.items():
                table[k] = w
            self.weights_table = tf.constant(table)
        self._train_fn = None
        self._eval_fn = None

    # ---- one distributed step -------------------------------------------------
    def _sums(self, y, probs, per_example):
        """(loss sum, example count, confusion counts [C, C]) of one replica's batch."""
        import tensorflow as tf

        y = tf.reshape(tf.cast(y, tf.int64), [-1])
        predicted = tf.argmax(probs, axis=-1, output_type=tf.int64)
        confusion = tf.math.confusion_matrix(y, predicted, num_classes=self.num_classes, dtype=tf.float32)
        count = tf.cast(tf.shape(y)[0], tf.float32)
        regularization = tf.add_n([tf.cast(l, tf.float32) for l in self.model.losses]) if self.model.losses else 0.0
        return tf.reduce_sum(per_example) + regularization * count, count, confusion

    def _weighted(self, y, per_example):
        import tensorflow as tf

        if self.weights_table is None:
            return per_example
        return per_example * tf.gather(self.weights_table, tf.reshape(tf.cast(y, tf.int64), [-1]))

    def _make_train_fn(self, element_spec):
        import tensorflow as tf

        model, optimizer = self.model, self.model.optimizer
        scales_loss = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        def replica_step(x, y):
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_example = self._weighted(y, tf.cast(self.per_example_loss(y, probs), tf.float32))
                loss = tf.nn.compute_average_loss(per_example)  # sum / GLOBAL batch: replicas' gradients add up
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(l, tf.float32) for l in model.losses]))
                scaled = optimizer.scale_loss(loss) if scales_loss else loss
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return self._sums(y, probs, per_example)

        def step(batch):
            sums = self.strategy.run(replica_step, args=batch)
            return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

        return tf.function(step, input_signature=[element_spec])

    def _make_eval_fn(self, element_spec):
        import tensorflow as tf

        model = self.model

        def replica_step(x, y):
            probs = model(x, training=False)
            per_example = tf.cast(self.per_example_loss(y, probs), tf.float32)
            return self._sums(y, probs, per_example)

        def step(batch):
            sums = self.strategy.run(replica_step, args=batch)
            return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

        return tf.function(step, input_signature=[element_spec])

    def _logs(self, totals, prefix=""):
        loss_sum, count, confusion = totals
        count = max(count, 1.0)
        logs = {f"{prefix}loss": loss_sum / count}
        for name in self.metric_names:
            logs[f"{prefix}{name}"] = f1_from_confusion(confusion) if name == F1_MACRO else np.trace(confusion) / count
        return logs

    def _run_epoch(self, dataset, make_fn, attr, show_progress=False):
        import tensorflow as tf

        distributed = distribute_dataset(self.strategy, dataset)
        if getattr(self, attr) is None:
            setattr(self, attr, make_fn(distributed.element_spec))
        fn = getattr(self, attr)
        loss_sum, count, confusion = 0.0, 0.0, np.zeros((self.num_classes, self.num_classes), np.float64)
        bar = keras.utils.Progbar(self._batches(dataset), unit_name="step") if show_progress and self.progress else None
        try:
            for step, batch in enumerate(distributed):
                batch_loss, batch_count, batch_confusion = fn(batch)
                loss_sum, count = loss_sum + float(batch_loss), count + float(batch_count)
                confusion += batch_confusion.numpy()
                if bar is not None:
                    bar.update(step + 1, [("loss", loss_sum / max(count, 1.0))])
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as exc:
            raise ClusterError(f"a worker of the cluster stopped responding ({type(exc).__name__}: "
                               f"{_telling_line(str(exc))}); training stopped. Restart every worker with "
                               "--resume to continue from the last checkpoint.") from None
        return loss_sum, count, confusion

    @staticmethod
    def _batches(dataset):
        n = int(dataset.cardinality())
        return n if n >= 0 else None

    # ---- the Keras-like API --------------------------------------------------------
    def evaluate(self, dataset):
        """{'loss': ..., 'accuracy': ..., 'f1_macro': ...} over a batched dataset, summed across all replicas."""
        return {k: float(v) for k, v in self._logs(self._run_epoch(dataset, self._make_eval_fn, "_eval_fn")).items()}

    def fit(self, train, validation, initial_epoch, epochs, callbacks):
        """Train epochs `initial_epoch..epochs-1`, calling `callbacks` as `model.fit` does; returns the History."""
        history = keras.callbacks.History()
        callback_list = keras.callbacks.CallbackList([*callbacks, history], model=self.model, epochs=epochs,
                                                     verbose=0)
        self.model.stop_training = False
        with self.strategy.scope():
            if not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            logs = self._logs(self._run_epoch(train, self._make_train_fn, "_train_fn", show_progress=True))
            callback_list.on_test_begin()
            val_logs = self._logs(self._run_epoch(validation, self._make_eval_fn, "_eval_fn"))
            callback_list.on_test_end(val_logs)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
            log.info(f"epoch {epoch + 1}/{epochs}: " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
            callback_list.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        callback_list.on_train_end()
        return history
