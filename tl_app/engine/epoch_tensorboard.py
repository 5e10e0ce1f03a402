"""The TensorBoard callback every run uses: epoch scalars with the phase, and a look at each phase's end."""
import os

import keras


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard that logs per epoch only, with no per-batch work, and knows the run's phases.

    Keras' TensorBoard calls `summary.scalar` for every batch's logs even with
    `update_freq="epoch"` (a no-op without a default writer, but not free):
    about 0.15 s per 1,700 batches, 7% of an MLP epoch on a 2-core CPU. With
    epoch-level logging and no profiling those calls do nothing, so skip them.
    Epoch scalars (loss, metrics, learning rate) are written exactly as before,
    plus `epoch_phase` (the phase's index) in train/. The trainer tells it when a
    phase begins (its name and learning rate as text, `phase`) and ends (the
    validation confusion matrix as an image and the per-class table as text, at
    the phase's last epoch, after early stopping restored the best weights).

    Args:
        log_dir: the run directory (train/ and validation/ go under it).
        phase_summaries: write the phase-end confusion matrix and table (one validation pass per phase).

    Examples:
        >>> callback = EpochTensorBoard("/tmp/tl_app_doc_run")
        >>> callback.update_freq, callback.write_graph
        ('epoch', False)
    """

    def __init__(self, log_dir, phase_summaries=True, **kwargs):
        kwargs.setdefault("write_graph", False)
        super().__init__(log_dir=log_dir, update_freq="epoch", profile_batch=0, **kwargs)
        self.phase_summaries = phase_summaries
        self._phase_index = None

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        if self._phase_index is not None and logs is not None:
            logs = {**logs, "phase": float(self._phase_index)}
        super().on_epoch_end(epoch, logs)

    # ---- phases (the trainer calls these; see tl_app.engine.trainer.PhaseInfo) ------------------------
    def on_phase_begin(self, info):
        from tl_app.evaluate.summaries import write_texts, writer

        self._phase_index = info.index
        phase = info.phase
        text = f"phase {info.index + 1} `{phase.name}`: {phase.epochs} epoch(s) at learning rate {phase.learning_rate:g}"
        train_writer = writer(os.path.join(self.log_dir, "train"))  # before fit: set_model has not run
        write_texts(train_writer, {"phase": text}, info.first_epoch)
        train_writer.close()

    def on_phase_end(self, info, model):
        """The validation confusion matrix and per-class table of the phase's final weights."""
        if not self.phase_summaries or info.validation is None:
            return
        from tl_app.engine.features import inference_function
        from tl_app.evaluate.evaluation import evaluate
        from tl_app.evaluate.plots import confusion_matrix_png
        from tl_app.evaluate.predictions import Predictions, predict_batches
        from tl_app.evaluate.summaries import write_images, write_texts, writer

        # On one device, outside the strategy (no collective): batches of one replica's share.
        validation = info.validation.unbatch().batch(info.replica_batch_size)
        call = inference_function(model, keras_spec_unbatched(info.validation.element_spec[0]))
        labels, probabilities = predict_batches(call, validation, desc=f"validating phase {info.phase.name}")
        if not len(labels):
            return
        evaluation = evaluate(Predictions(labels, probabilities, info.class_names, split="validation"))
        title = f"validation after phase '{info.phase.name}' (epoch {info.last_epoch + 1})"
        val_writer = writer(os.path.join(self.log_dir, "validation"))
        write_images(val_writer, {"confusion_matrix": confusion_matrix_png(evaluation.confusion, info.class_names,
                                                                           title)}, info.last_epoch)
        write_texts(val_writer, {"per_class": f"**{title}**\n\n" + evaluation.per_class_markdown()}, info.last_epoch)
        val_writer.close()


def keras_spec_unbatched(batched_spec):
    """The spec of one example of a batched dataset's inputs (inference_function adds the batch dimension)."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda s: tf.TensorSpec(s.shape[1:], s.dtype), batched_spec)
