"""The engine's tf.data plumbing: batching for a strategy, counting batches, labels and class weights."""
import numpy as np

from tl_app import log
from tl_app.engine.strategies import with_data_sharding


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

    from tl_app.data.arrays import sliced_from

    tensors = sliced_from(dataset)
    if tensors is not None:  # in memory: shuffle and batch indices, gather each batch (~25% faster epochs for an MLP)
        n = len(tf.nest.flatten(tensors)[0])
        indices = tf.data.Dataset.range(n)
        if shuffle:  # the same buffer and seed over indices 0..n-1: the same order as shuffling the elements
            indices = indices.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        constants = tf.nest.map_structure(tf.convert_to_tensor, tensors)
        gathered = indices.batch(batch_size, drop_remainder=drop_remainder).map(
            lambda i: tf.nest.map_structure(lambda t: tf.gather(t, i), constants), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
        return ready_to_fit(gathered)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ready_to_fit(dataset.batch(batch_size, drop_remainder=drop_remainder))


def ready_to_fit(batches):
    """How every batched dataset the Trainer fits ends: prefetched, sharded by element, without the autotune thread."""
    import tensorflow as tf

    return without_autotune_thread(with_data_sharding(batches.prefetch(tf.data.AUTOTUNE)))


def without_autotune_thread(dataset):
    """`dataset` without tf.data's model-based autotuning thread; its `AUTOTUNE` maps then run one call per core,
    at most 16 (TensorFlow's starting value), and its prefetches keep their own buffer tuning.

    Why: Keras's `fit` makes a new iterator every epoch and drops the last one when it ends, and dropping an
    iterator waits for that thread's next scheduled optimization (its period doubles up to 60 s), with no CPU
    used meanwhile. Measured (TensorFlow 2.21, MiniLM-L6 on BBC News, docs/speed.md): 47-50 s at each epoch
    boundary and at the end of a fine-tuning phase, a third of it; none with the thread off.

    Example:
        >>> import tensorflow as tf
        >>> without_autotune_thread(tf.data.Dataset.range(3)).options().autotune.enabled
        False
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


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
