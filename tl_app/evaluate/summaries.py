"""What a run writes to TensorBoard besides Keras' epoch scalars, and reading the epoch scalars back.

A run directory `runs/<recipe>/<run-id>/` holds these TensorBoard runs:
- `train/`, `validation/`: epoch scalars (loss, accuracy, f1_macro, learning rate, phase index); at the
  end of each phase, the validation confusion matrix (image) and per-class table (text);
- `test/`: at the end of the run (and after each gate retry round), the test metrics as scalars
  (`evaluation/accuracy`, ...), the
  confusion matrix and reliability diagram (images), the per-class table, a grid of test inputs with
  their true and predicted classes (image recipes) or the most confident mistakes (text), and the
  model graph;
- the run directory itself: its HParams record (config fields as hyperparameters; the HParams
  dashboard finds the metrics among the scalars of its sub-runs), so runs compare side by side.
"""
import glob
import os

import numpy as np

TEST = "test"
EVALUATION = "evaluation"  # tag group of the test metrics: evaluation/accuracy, evaluation/f1_macro, ...


def writer(log_dir):
    import tensorflow as tf

    return tf.summary.create_file_writer(log_dir)


def _image(png):
    import tensorflow as tf

    return tf.expand_dims(tf.io.decode_png(png, channels=3), 0)


def write_images(file_writer, images, step):
    """`{tag: png bytes}` as TensorBoard images at `step`."""
    import tensorflow as tf

    with file_writer.as_default():
        for tag, png in images.items():
            tf.summary.image(tag, _image(png), step=step)


def write_texts(file_writer, texts, step):
    """`{tag: markdown}` as TensorBoard text at `step`."""
    import tensorflow as tf

    with file_writer.as_default():
        for tag, text in texts.items():
            tf.summary.text(tag, text, step=step)


def write_scalars(file_writer, scalars, step):
    import tensorflow as tf

    with file_writer.as_default():
        for tag, value in scalars.items():
            tf.summary.scalar(tag, float(value), step=step)


def write_graph(file_writer, traced):
    """The graph of a traced `tf.function` (the model in inference mode) for the Graphs dashboard."""
    import tensorflow as tf

    with file_writer.as_default():
        tf.summary.graph(traced.get_concrete_function().graph)


def hparam_value(value):
    """A config value as HParams takes it: bool, int, float or str (None and lists as text)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return "none" if value is None else str(value)


def write_hparams(run_dir, config_dict, run_name):
    """The run's HParams record: every config field (and the recipe) as a hyperparameter."""
    from tensorboard.plugins.hparams import api as hp

    values = {key: hparam_value(value) for key, value in sorted(config_dict.items()) if not isinstance(value, dict)}
    file_writer = writer(run_dir)
    with file_writer.as_default():
        hp.hparams(values, trial_id=run_name)
    file_writer.close()


def read_epoch_scalars(run_dir):
    """{"train/loss": {epoch: value}, "validation/accuracy": {...}, "train/phase": {...}} from the event files.

    Keras writes `epoch_<name>` scalars; a resumed run may have logged an epoch twice (the later value wins).
    """
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out = {}
    for split in ("train", "validation"):
        files = sorted(glob.glob(os.path.join(run_dir, split, "events.out.tfevents.*")), key=os.path.getmtime)
        for path in files:
            for event in EventFileLoader(path).Load():  # TensorBoard's reader: no tf.data pipeline to build per file
                for value in event.summary.value:
                    if value.tag.startswith("epoch_") and value.HasField("tensor"):
                        series = out.setdefault(f"{split}/{value.tag[len('epoch_'):]}", {})
                        series[int(event.step)] = float(np.asarray(tf.make_ndarray(value.tensor)).reshape(-1)[0])
    return out


def phase_starts(epochs, phase_names):
    """[(first_epoch, name)] of each phase, from the per-epoch phase index (`train/phase`)."""
    series = epochs.get("train/phase", {})
    starts, last = [], None
    for epoch in sorted(series):
        index = int(round(series[epoch]))
        if index != last:
            name = phase_names[index] if 0 <= index < len(phase_names) else f"phase {index + 1}"
            starts.append((epoch, name))
            last = index
    return starts
