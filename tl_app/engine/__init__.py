"""The training engine: everything that trains any model, whatever its family.

- `trainer`: the Trainer (phases in order, callbacks, epochs continuing across phases) and its loops;
- `custom_loop`: the `strategy.run` loop for strategies Keras `fit` cannot drive (multi-worker);
- `optimizers`, `schedules`, `losses`, `regularizers`: the fine-tuning controls of a phase;
- `checkpoints`, `resume_callbacks`: per-epoch checkpoints and early stopping that survive a kill;
- `strategies`, `launch`: choosing the tf.distribute strategy, and local multi-worker clusters;
- `datasets`, `features`, `feature_store`: batching, features of a frozen base computed once and kept on disk;
- `epoch_tensorboard`: the TensorBoard callback every run has.

Nothing here knows a recipe family; the families (`tl_app.image`, `tl_app.text`, `tl_app.mlp`) use it.
"""
