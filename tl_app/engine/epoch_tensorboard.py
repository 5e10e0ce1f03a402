"""The TensorBoard callback every run uses (epoch scalars with the phase, a look at each phase's end), and what
a resumed run removes from the logs of the run that was killed (`drop_steps_from`)."""
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
        if info.resumed:
            return  # the killed run logged this phase's beginning (a step before its checkpoint: kept)
        phase = info.phase
        text = f"phase {info.index + 1} `{phase.name}`: {phase.epochs} epoch(s) at learning rate {phase.learning_rate:g}"
        train_writer = writer(os.path.join(self.log_dir, "train"))  # before fit: set_model has not run
        write_texts(train_writer, {"phase": text}, info.first_epoch)
        train_writer.close()

    def on_phase_end(self, info, model):
        """The validation confusion matrix and per-class table of the phase's final weights."""
        if not self.phase_summaries or info.validation is None or getattr(info.phase, "task", None) is not None:
            return  # a phase that trains another model (a masked LM) has no classes to look at
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
        predictions = Predictions(labels, probabilities, info.class_names, split="validation")
        title = f"validation after phase '{info.phase.name}' (epoch {info.last_epoch + 1})"
        if labels.ndim == 2:  # multi-hot labels: per-label figures at 0.5 (thresholds are chosen after training)
            from tl_app.evaluate.multi_label import evaluate_label_sets

            evaluation = evaluate_label_sets(predictions, [0.5] * labels.shape[1]).render()
            images = {"pr_curves": evaluation.figures["pr_curves"]}
        else:
            evaluation = evaluate(predictions)
            images = {"confusion_matrix": confusion_matrix_png(evaluation.confusion, info.class_names, title)}
        val_writer = writer(os.path.join(self.log_dir, "validation"))
        write_images(val_writer, images, info.last_epoch)
        write_texts(val_writer, {"per_class": f"**{title}**\n\n" + evaluation.per_class_markdown()}, info.last_epoch)
        val_writer.close()


def keras_spec_unbatched(batched_spec):
    """The spec of one example of a batched dataset's inputs (inference_function adds the batch dimension)."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda s: tf.TensorSpec(s.shape[1:], s.dtype), batched_spec)


def drop_steps_from(log_dir, step):
    """Remove from the event files in `log_dir` what was logged after epoch `step - 1`; returns how many values.

    A run killed after TensorBoard logged an epoch but before that epoch's checkpoint trains the
    epoch again when it resumes; without this, TensorBoard would show that epoch twice. In each
    file, the summaries after the last `epoch_*` value of an earlier epoch are removed (Keras also
    logs `evaluation_*_vs_iterations` values, stepped by iterations, before each epoch's own); in a
    file with no epoch values (a phase's text or images), those at step `step` or later; a
    record cut short by the kill goes too. Files are rewritten atomically, keeping their names.

    Args:
        log_dir: a TensorBoard log directory (`<run>/train`, `<run>/validation`).
        step: the first epoch (TensorBoard step) the resumed run logs: the checkpoint's epoch count.
    """
    if not os.path.isdir(log_dir):
        return 0
    removed = 0
    for name in sorted(n for n in os.listdir(log_dir) if ".tfevents." in n):
        path = os.path.join(log_dir, name)
        records, cut = _records(path)
        epochs = [i for i, (_, event) in enumerate(records) if _is_epoch_value(event)]
        if epochs:
            kept_until = max([i for i in epochs if records[i][1].step < step], default=-1)
            keep = [i <= kept_until for i in range(len(records))]
        else:  # a file of phase texts and phase-end images (one writer each): by step
            keep = [event.step < step for _, event in records]
        kept = [record for (record, event), k in zip(records, keep) if k or not event.HasField("summary")]
        dropped = sum(len(event.summary.value) for (_, event), k in zip(records, keep)
                      if not k and event.HasField("summary"))
        if dropped or cut:
            _rewrite(path, kept)
            removed += dropped
    return removed


def _is_epoch_value(event):
    return event.HasField("summary") and any(v.tag.startswith("epoch_") for v in event.summary.value)


def _records(path):
    """`([(record, Event)], cut)`: an event file's records, up to one a kill cut short (`cut` says if there was one)."""
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    found = []
    iterator = tf.data.TFRecordDataset(path).as_numpy_iterator()
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return found, False
        except tf.errors.DataLossError:
            return found, True
        found.append((record, event_pb2.Event.FromString(record)))


def _rewrite(path, records):
    """Replace the event file `path` by `records` (temporary file, then rename; the file's mode kept)."""
    import tensorflow as tf

    from tl_app import atomic

    fd, tmp = atomic.make_temp_file(os.path.dirname(path))
    os.close(fd)
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in records:
                writer.write(record)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
