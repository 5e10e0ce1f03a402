"""Masked-LM adaptation of a BERT encoder: keras-hub's `BertMaskedLM` around it, and masked-token perplexity.

`MaskedLMTask` is the `adapt` phase's task (`tl_app.engine.phase_task`): the
Trainer fits a `BertMaskedLM` built around the recipe's own `BertBackbone`
(the layers are shared, so the classifier's later phases start from the
adapted encoder), with keras-hub's loss (`SparseCategoricalCrossentropy` on
the logits of the masked positions, weighted by `mask_weights`) and
`keras_hub.metrics.Perplexity(from_logits=True)` as a weighted metric, on the
seeded batches of `text.masked_lm_data`.

Perplexity here is masked-token perplexity: exp of the mean cross-entropy
over the masked positions only (weight 1), on the held-out texts. `exp(loss)`
is not this figure: the loss's default reduction divides by every mask slot,
the padded ones too. It is measured before the phase (`adapt_perplexity_before`)
and after it (`adapt_perplexity_after`), on the same masks, logged to
TensorBoard (validation/) and kept in `Trainer.results` (then metrics.json).

The masked-LM head (a dense layer, LayerNorm and an output bias; the output
projection is the encoder's token embedding, tied) comes from the preset when
it has one (a directory `text_mlm` saved: `task.json` + `task.weights.h5`).
keras-hub converts only the encoder of a Hugging Face BERT directory (the
offline MiniLM asset), so there the head starts fresh and the first
perplexity is high: the log says so.
"""
import json
import os

import keras

from tl_app import log
from tl_app.engine.phase_task import PhaseTask

BEFORE = "adapt_perplexity_before"
AFTER = "adapt_perplexity_after"
TASK_CONFIG, TASK_WEIGHTS = "task.json", "task.weights.h5"  # keras-hub's names in a preset directory


def head_weights_file(preset_dir):
    """The `task.weights.h5` of a keras-hub preset directory saved from a `BertMaskedLM`, or None."""
    config_path = os.path.join(preset_dir, TASK_CONFIG)
    weights = os.path.join(preset_dir, TASK_WEIGHTS)
    if not (os.path.isfile(config_path) and os.path.isfile(weights)):
        return None
    try:
        with open(config_path, encoding="utf-8") as f:
            name = json.load(f).get("registered_name", "")
    except (OSError, ValueError):
        return None
    return weights if name.endswith("BertMaskedLM") else None


def masked_lm(backbone, resolved):
    """keras-hub's `BertMaskedLM` around `backbone` (shared, not copied), its head from the preset when it has one.

    Args:
        backbone: the `BertBackbone` (e.g. the classifier's).
        resolved: the `text.presets.ResolvedPreset` the backbone came from.
    """
    import keras_hub

    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    weights = head_weights_file(resolved.preset) if os.path.isdir(resolved.preset) else None
    if weights:
        model.load_task_weights(weights)
        log.info(f"masked-LM head: restored from {weights}")
    else:
        hugging_face = os.path.isfile(os.path.join(resolved.preset, "model.safetensors"))
        why = "keras-hub converts only the encoder of a Hugging Face BERT" if hugging_face else "the preset has no head"
        log.info(f"masked-LM head: new, randomly initialised ({why}). The encoder and its tied token embeddings are"
                 " pretrained, the head's dense layer, LayerNorm and output bias are not: the held-out perplexity"
                 " before adaptation is high for that reason")
    return model


def masked_perplexity(model, batches):
    """Masked-token perplexity of `model` on `(x, mask_ids, mask_weights)` batches (weighted: padded slots count 0).

    Args:
        model: returns logits [N, mask slots, vocabulary] for `x` (a `BertMaskedLM`).
        batches: a dataset (or any iterable) of `(x, mask_ids, mask_weights)`.

    Examples:
        >>> import numpy as np
        >>> uniform = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: keras.ops.zeros((1, 2, 4)))])
        >>> round(masked_perplexity(uniform, [(np.zeros((1, 2)), np.array([[1, 3]]), np.array([[1.0, 0.0]]))]), 3)
        4.0
    """
    import keras_hub

    metric = keras_hub.metrics.Perplexity(from_logits=True)
    for x, mask_ids, weights in batches:
        metric.update_state(mask_ids, model.predict_on_batch(x), sample_weight=weights)
    return float(metric.result())


class HeldOutPerplexity(keras.callbacks.Callback):
    """Perplexity on the held-out batches before the phase's first epoch and after its last: log, TensorBoard, results.

    Args:
        batches: the held-out `(x, mask_ids, mask_weights)` batches (the same masks every time).
        results: the Trainer's `results` dict (BEFORE survives a resume in it: not measured again).
        phase_start_epoch: the TensorBoard step of the phase's start.
        log_dir: a TensorBoard run directory (scalars go to its validation/), or None.
    """

    def __init__(self, batches, results, phase_start_epoch, log_dir=None):
        super().__init__()
        self.batches = batches
        self.results = results
        self.phase_start_epoch = phase_start_epoch
        self.log_dir = log_dir
        self.epochs_done = phase_start_epoch

    def _scalar(self, tag, value, step):
        if self.log_dir is None:
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "validation"))
        with writer.as_default():
            tf.summary.scalar(tag, value, step=step)
        writer.close()

    def on_train_begin(self, logs=None):
        value = masked_perplexity(self.model, self.batches)
        if BEFORE in self.results:  # a resumed phase: BEFORE was measured on the weights the phase started from
            log.info(f"held-out masked-token perplexity at the restart: {value:,.4f}"
                     f" (before adaptation: {self.results[BEFORE]:,.4f})")
            return
        self.results[BEFORE] = value
        self._scalar(BEFORE, value, self.phase_start_epoch)
        log.info(f"held-out masked-token perplexity before adaptation: {value:,.4f}")

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1

    def on_train_end(self, logs=None):
        value = masked_perplexity(self.model, self.batches)
        self.results[AFTER] = value
        self._scalar(AFTER, value, self.epochs_done)
        log.info(f"held-out masked-token perplexity: {self.results[BEFORE]:,.4f} before adaptation, {value:,.4f} after")


class MaskedLMTask(PhaseTask):
    """The adapt phase's task: train a `BertMaskedLM` (sharing the recipe's encoder) on seeded masked batches.

    Args:
        backbone: the recipe's `BertBackbone`.
        resolved: the `ResolvedPreset` it came from (its masked-LM head, if it has one).
        preprocessor: from `text.masked_lm_data.masked_lm_preprocessor`.
        texts: `text.adapt_data.AdaptationTexts` (train and held-out documents).
        seed: the run's seed (orders and masks).
        model: a `BertMaskedLM` already built around `backbone` (text_mlm's model), or None to build one.

    Examples:
        >>> import keras_hub
        >>> from tl_app.text.adapt_data import hold_out
        >>> from tl_app.text.masked_lm_data import masked_lm_preprocessor
        >>> from tl_app.text.presets import ResolvedPreset
        >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat"]
        >>> backbone = keras_hub.models.BertBackbone(len(vocabulary), num_layers=1, num_heads=1, hidden_dim=8,
        ...                                          intermediate_dim=16, max_sequence_length=8)
        >>> preprocessor = masked_lm_preprocessor(keras_hub.models.BertTokenizer(vocabulary=vocabulary), 8)
        >>> texts = hold_out(["the cat sat on the mat"] * 10, 0.2, seed=0, source="an example")
        >>> task = MaskedLMTask(backbone, ResolvedPreset("none", "random"), preprocessor, texts, seed=0)
        >>> task.build().backbone is backbone  # the phase trains the encoder it was given
        [tl-app] masked-LM head: new, randomly initialised ...
        True
        >>> task.train_data(batch_size=4, first_epoch=0, epochs=2)[1]  # steps per epoch: 8 texts train
        2
    """

    metric_names = ("perplexity",)

    def __init__(self, backbone, resolved, preprocessor, texts, seed, model=None):
        self.backbone = backbone
        self.resolved = resolved
        self.preprocessor = preprocessor
        self.texts = texts
        self.seed = seed
        self.model = model
        self._heldout = {}
        self._token_ids = {}

    def token_ids(self, part):
        """The `train` or `heldout` texts tokenized and packed (once: every epoch masks the same token ids)."""
        from tl_app.text.masked_lm_data import packed_token_ids

        if part not in self._token_ids:
            self._token_ids[part] = packed_token_ids(self.preprocessor, getattr(self.texts, part))
        return self._token_ids[part]

    def build(self):
        if self.model is None:
            self.model = masked_lm(self.backbone, self.resolved)
        return self.model

    def train_data(self, batch_size, first_epoch, epochs, drop_remainder=False):
        from tl_app.text.masked_lm_data import masked_batches

        return masked_batches(self.preprocessor, self.token_ids("train"), batch_size, self.seed,
                              range(first_epoch, epochs), drop_remainder=drop_remainder)

    def validation_data(self, batch_size):
        from tl_app.text.masked_lm_data import heldout_batches

        if batch_size not in self._heldout:
            self._heldout[batch_size] = heldout_batches(self.preprocessor, self.token_ids("heldout"), batch_size,
                                                        self.seed)
        return self._heldout[batch_size]

    def compile_args(self):
        import keras_hub

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "weighted_metrics": [keras_hub.metrics.Perplexity(from_logits=True, name="perplexity")]}

    def callbacks(self, results, phase_start_epoch, run_callbacks):
        boards = [c for c in run_callbacks if isinstance(c, keras.callbacks.TensorBoard)]
        heldout = next(iter(self._heldout.values()))  # validation_data ran first (the Trainer's order)
        return [HeldOutPerplexity(heldout, results, phase_start_epoch, boards[0].log_dir if boards else None)]
