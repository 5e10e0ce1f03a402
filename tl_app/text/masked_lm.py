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
perplexity is high: the log says so. A new head is first trained alone, the
encoder frozen (`MaskedLMTask.warm_up_split`, the `adapt_head` phase): a random
head's gradients would otherwise reach the pretrained encoder as noise (on BBC
News two epochs at 1e-4 that way cost 1.8 points of head-phase accuracy); the
perplexity after that warm-up (`adapt_perplexity_head_only`) also shows how
much of the fall is the head's and how much the encoder's.
"""
import copy
import json
import os

import keras

from tl_app import log
from tl_app.engine.phase_task import PhaseTask

BEFORE = "adapt_perplexity_before"
HEAD_ONLY = "adapt_perplexity_head_only"  # after a new head's warm-up, the encoder as the preset had it
AFTER = "adapt_perplexity_after"
WHEN = {BEFORE: "before adaptation", HEAD_ONLY: "after the head's warm-up (encoder unchanged)",
        AFTER: "after adaptation"}
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


def preset_head_weights(resolved):
    """The masked-LM head weights file of the preset `resolved` came from, or None (the head starts new)."""
    return head_weights_file(resolved.preset) if os.path.isdir(resolved.preset) else None


def masked_lm(backbone, resolved):
    """keras-hub's `BertMaskedLM` around `backbone` (shared, not copied), its head from the preset when it has one.

    Args:
        backbone: the `BertBackbone` (e.g. the classifier's).
        resolved: the `text.presets.ResolvedPreset` the backbone came from.
    """
    import keras_hub

    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    weights = preset_head_weights(resolved)
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
    """Perplexity on the held-out batches at the phase's start and end: log, TensorBoard, results.

    Args:
        batches: the held-out `(x, mask_ids, mask_weights)` batches (the same masks every time).
        results: the Trainer's `results` dict (kept in checkpoints: a figure in it is not measured again).
        phase_start_epoch: the TensorBoard step of the phase's start.
        log_dir: a TensorBoard run directory (scalars go to its validation/), or None.
        figures: the `results` keys of the figures at the start and at the end of the phase: (BEFORE, AFTER);
            a head warm-up phase ends with HEAD_ONLY, and the adapt phase after it starts from that.
    """

    def __init__(self, batches, results, phase_start_epoch, log_dir=None, figures=(BEFORE, AFTER)):
        super().__init__()
        self.batches = batches
        self.results = results
        self.phase_start_epoch = phase_start_epoch
        self.log_dir = log_dir
        self.start, self.end = figures
        self.epochs_done = phase_start_epoch
        self.began = False

    def _scalar(self, tag, value, step):
        if self.log_dir is None:
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "validation"))
        with writer.as_default():
            tf.summary.scalar(tag, value, step=step)
        writer.close()

    def on_epoch_begin(self, epoch, logs=None):
        if self.began:
            return
        self.began = True
        if epoch > self.phase_start_epoch:  # resumed inside the phase: its start figure came with the checkpoint
            value = masked_perplexity(self.model, self.batches)
            known = f" ({WHEN[self.start]}: {self.results[self.start]:,.4f})" if self.start in self.results else ""
            log.info(f"held-out masked-token perplexity at the restart: {value:,.4f}{known}")
            return
        if self.start in self.results:  # the phase before ended on these weights and measured them
            return
        value = masked_perplexity(self.model, self.batches)
        self.results[self.start] = value
        self._scalar(self.start, value, self.phase_start_epoch)
        log.info(f"held-out masked-token perplexity {WHEN[self.start]}: {value:,.4f}")

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1

    def on_train_end(self, logs=None):
        value = masked_perplexity(self.model, self.batches)
        self.results[self.end] = value
        self._scalar(self.end, value, self.epochs_done)
        known = [f"{self.results[key]:,.4f} {WHEN[key]}" for key in (BEFORE, HEAD_ONLY)
                 if key in self.results and key != self.end]
        log.info(f"held-out masked-token perplexity: {', '.join(known + [f'{value:,.4f} {WHEN[self.end]}'])}")


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
        self.figures = (BEFORE, AFTER)  # the perplexities measured at the phase's start and end
        self.epochs_before = 0  # epochs of an earlier phase on this task: its masks were those epochs'
        self._shared = {"model": model, "heldout": {}, "token_ids": {}}  # one model and one tokenization per split

    @property
    def model(self):
        """The `BertMaskedLM` (None until `build()`)."""
        return self._shared["model"]

    def head_is_new(self):
        """Whether the masked-LM head starts randomly initialised (the preset has none)."""
        return preset_head_weights(self.resolved) is None

    def warm_up_split(self, head_epochs):
        """(head warm-up task, adapt task): this task for two phases, one after the other, on one model.

        The first trains the new head alone (its phase freezes the encoder) and reports the perplexity
        before and after it (HEAD_ONLY); the second starts from that figure and ends with AFTER. The
        second's masks go on from the first's epochs, so it never repeats one.

        Args:
            head_epochs: the warm-up phase's epochs.
        """
        warm_up, adapt = copy.copy(self), copy.copy(self)
        warm_up.figures = (self.figures[0], HEAD_ONLY)
        adapt.figures = (HEAD_ONLY, self.figures[1])
        adapt.epochs_before = self.epochs_before + head_epochs
        return warm_up, adapt

    def token_ids(self, part):
        """The `train` or `heldout` texts tokenized and packed (once: every epoch masks the same token ids)."""
        from tl_app.text.masked_lm_data import packed_token_ids

        packed = self._shared["token_ids"]
        if part not in packed:
            packed[part] = packed_token_ids(self.preprocessor, getattr(self.texts, part))
        return packed[part]

    def build(self):
        if self.model is None:
            self._shared["model"] = masked_lm(self.backbone, self.resolved)
        return self.model

    def train_data(self, batch_size, first_epoch, epochs, drop_remainder=False):
        from tl_app.text.masked_lm_data import masked_batches

        offset = self.epochs_before
        return masked_batches(self.preprocessor, self.token_ids("train"), batch_size, self.seed,
                              range(offset + first_epoch, offset + epochs), drop_remainder=drop_remainder)

    def validation_data(self, batch_size):
        from tl_app.text.masked_lm_data import heldout_batches

        heldout = self._shared["heldout"]
        if batch_size not in heldout:
            heldout[batch_size] = heldout_batches(self.preprocessor, self.token_ids("heldout"), batch_size, self.seed)
        return heldout[batch_size]

    def compile_args(self):
        import keras_hub

        return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "weighted_metrics": [keras_hub.metrics.Perplexity(from_logits=True, name="perplexity")]}

    def callbacks(self, results, phase_start_epoch, run_callbacks):
        boards = [c for c in run_callbacks if isinstance(c, keras.callbacks.TensorBoard)]
        heldout = next(iter(self._shared["heldout"].values()))  # validation_data ran first (the Trainer's order)
        return [HeldOutPerplexity(heldout, results, phase_start_epoch, boards[0].log_dir if boards else None,
                                  figures=self.figures)]
