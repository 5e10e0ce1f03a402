"""tf.data builders: tfds data sets, idx files, in-memory arrays."""
