"""A phase that trains another model than the recipe's: one that shares layers with it.

Most phases train the recipe's model (or its head on cached features). Some
train a different model around the same layers: continuing the pretraining of
a text encoder with a masked-LM head (`tl_app.text.masked_lm`) trains
keras-hub's `BertMaskedLM` around the classifier's `BertBackbone`, after which
the classifier's next phases start from the adapted encoder. A `PhaseTask` on
`Phase.task` says what that model is, what it trains on and how it is
compiled; the `Trainer` does the rest as for any phase: a fresh optimizer with
the phase's schedule, the run's strategy, TensorBoard epochs continuing across
phases, a checkpoint after every epoch and `--resume` inside the phase.

What a checkpoint of such a phase holds: the recipe's model's weights (the
shared layers among them), the variables of the task's model that the
recipe's model lacks (e.g. the masked-LM head: `task_variables`), the phase's
optimizer variables, and `Trainer.results` (figures phases report, e.g.
perplexity before and after). Data that changes every epoch (shuffling,
masking) must be a function of the seed and the epoch, so that a resumed phase
sees what the uninterrupted one would have: `train_data` is told the epoch it
starts from.
"""


class PhaseTask:
    """What a phase trains when it is not the recipe's model. Subclass it and set `Phase(..., task=...)`.

    The Trainer calls, in this order: `build()` inside the strategy's scope (its model may reuse
    layers of the recipe's model), `train_data`, `validation_data`, `compile_args`, and adds
    `callbacks(...)` to the phase's callbacks. It fits the model with `steps_per_epoch` from
    `train_data`, so one dataset may hold every remaining epoch (each epoch's data its own).

    Examples:
        A task that trains an autoencoder sharing the recipe's encoder (a sketch):

        >>> class Reconstruct(PhaseTask):
        ...     def __init__(self, encoder, inputs):
        ...         self.encoder, self.inputs, self.model = encoder, inputs, None
        ...     def build(self):
        ...         import keras
        ...         x = keras.Input(self.inputs.shape[1:])
        ...         decoded = keras.layers.Dense(self.inputs.shape[-1])(self.encoder(x))
        ...         self.model = keras.Model(x, decoded)
        ...         return self.model
        ...     def train_data(self, batch_size, first_epoch, epochs, drop_remainder=False):
        ...         import tensorflow as tf
        ...         one = tf.data.Dataset.from_tensor_slices((self.inputs, self.inputs)).batch(batch_size)
        ...         return one.repeat(epochs - first_epoch), int(one.cardinality())
        ...     def compile_args(self):
        ...         return {"loss": "mse"}
    """

    #: The metrics this task logs besides the loss (what early stopping may watch in its phase).
    metric_names = ()

    def build(self):
        """The Keras model the phase fits (built once, inside the strategy's scope)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build()")

    def train_data(self, batch_size, first_epoch, epochs, drop_remainder=False):
        """`(dataset, steps_per_epoch)`: batches for the phase's epochs `first_epoch .. epochs - 1`, in order.

        Args:
            batch_size: the global batch size.
            first_epoch: the first epoch of the phase still to train (0, or where a resumed phase stopped).
            epochs: the phase's epochs.
            drop_remainder: drop partial batches (TPUs need static shapes).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement train_data()")

    def validation_data(self, batch_size):
        """Batches evaluated after every epoch (the same every time), or None."""
        return None

    def compile_args(self):
        """Keyword arguments of `model.compile` besides the optimizer (loss, metrics, weighted_metrics)."""
        raise NotImplementedError(f"{type(self).__name__} must implement compile_args()")

    def callbacks(self, results, phase_start_epoch, run_callbacks):
        """Keras callbacks of this phase, run after early stopping and before the checkpoint callback.

        Args:
            results: `Trainer.results`, a dict the callbacks may add figures to (name -> float); it is
                saved in every checkpoint, so figures of an interrupted phase survive `--resume`.
            phase_start_epoch: the global epoch (TensorBoard step) at which the phase began.
            run_callbacks: the run's callbacks (e.g. the TensorBoard one, for its log directory).
        """
        return []


def task_variables(task_model, model):
    """The variables of `task_model` that `model` does not share (e.g. a masked-LM head), in a fixed order."""
    shared = {id(v) for v in model.weights}
    return [v for v in task_model.weights if id(v) not in shared]
