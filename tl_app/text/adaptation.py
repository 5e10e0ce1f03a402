"""Domain adaptation of a BERT encoder with a masked-LM objective: the `adapt` phase, and `text_mlm`'s base class.

BERT encoders only (keras-hub's `BertMaskedLM`; `text.encoders` says which encoders have it): with another
encoder (RoBERTa, DeBERTaV3, ...) the run stops in one line before training (`presets.require_masked_lm`).

In a text recipe (`adapt_epochs` > 0) the `adapt` phase comes first: keras-hub's
`BertMaskedLM` around the classifier's own encoder continues its pretraining on
`adapt_data` (default: the training texts, labels ignored), then the head and
fine-tune phases train from the adapted encoder; the export is the same
classifier. `MaskedLMAdaptation` (recipe `text_mlm`) runs only that phase and
saves the encoder as a keras-hub preset directory that `--set preset=DIR`
accepts in every text recipe (`text.encoder_preset`).

The phase: AdamW (weight decay 0.01, LayerNorm and bias excluded), 10% linear
warmup then linear decay, gradient clipping at norm 1.0, the whole encoder
and the masked-LM head training (the [CLS] pooler is unused by the masked LM
and stays frozen); masks and orders seeded per epoch (`text.masked_lm_data`),
checkpoints and `--resume` inside it like any phase; held-out masked-token
perplexity before and after (`text.masked_lm`). When the preset has no
masked-LM head (the offline MiniLM), an `adapt_head` phase comes first: the
new head trains alone, the encoder frozen, as the classifiers' head phase
does before fine-tuning, so that the encoder adapts to a head that already
predicts tokens rather than to a random one.
"""
from tl_app import log
from tl_app.errors import UserError
from tl_app.recipe import DataSplits, Phase, Recipe
from tl_app.text.config import MaskedLMConfig

ADAPT_OPTIONS = {"optimizer": "adamw", "weight_decay": 0.01, "lr_schedule": "linear", "warmup_fraction": 0.1,
                 "clipnorm": 1.0}


def load_adaptation(cfg, tokenizer, texts, source, notes=()):
    """`AdaptationTexts`: `texts` without empty ones, a seeded held-out slice carved, lines for the log.

    Args:
        cfg: a config with `adapt_holdout_fraction`, `sequence_length` and `seed`.
        tokenizer: the encoder's tokenizer (for the truncation line of the log).
        texts, source, notes: the documents, where they come from, and lines about them
            (`text.adapt_data.read_adapt_texts` returns these three).
    """
    from tl_app.text.adapt_data import hold_out
    from tl_app.text.packing import truncation_note

    adaptation = hold_out([t for t in texts if t.strip()], cfg.adapt_holdout_fraction, cfg.seed, source, notes)
    adaptation.notes.append(f"adaptation text: {source}; {len(adaptation.train)} documents train the masked LM,"
                            f" {len(adaptation.heldout)} held out for perplexity")
    adaptation.notes.append(truncation_note(tokenizer, adaptation.train, cfg.sequence_length, "adaptation"))
    return adaptation


def unfreeze_for_masked_lm(backbone):
    """The whole encoder trains, but its [CLS] pooler (the masked LM does not use it: it would get no gradient)."""
    backbone.trainable = True
    backbone.get_layer("pooled_dense").trainable = False
    log.info("phase 'adapt': the whole encoder and the masked-LM head train")


def freeze_for_head_warm_up(backbone):
    """Only the new masked-LM head trains: the encoder and its token embeddings (the head's tied output) are frozen."""
    backbone.trainable = False
    log.info("phase 'adapt_head': the encoder frozen, the new masked-LM head trains (dense, LayerNorm, output bias)")


def adapt_phases(epochs, learning_rate, task, head_epochs=0, head_learning_rate=1e-3, options=ADAPT_OPTIONS):
    """The masked-LM phases training `task` (a `text.masked_lm.MaskedLMTask`): [`adapt_head`,] `adapt`.

    Args:
        epochs, learning_rate: the `adapt` phase's (the encoder and the head train).
        head_epochs, head_learning_rate: the `adapt_head` warm-up's (the head alone), run only when the
            head is new (the preset has none) and `head_epochs` > 0.
        options: optimizer fields that override the config's (the text recipes: ADAPT_OPTIONS; text_mlm:
            none, its config's optimizer fields default to the same values and the user may set them).

    Examples:
        >>> from tl_app.text.masked_lm import MaskedLMTask  # doctest: +SKIP
        >>> [p.name for p in adapt_phases(2, 5e-5, task, head_epochs=1)]  # doctest: +SKIP
        ['adapt_head', 'adapt']
    """
    adapt = task
    phases = []
    if head_epochs > 0 and task.head_is_new():
        warm_up, adapt = task.warm_up_split(head_epochs)
        phases.append(Phase("adapt_head", head_epochs, head_learning_rate, augment=False, task=warm_up,
                            prepare=lambda m: freeze_for_head_warm_up(task.backbone), options=dict(options)))
    phases.append(Phase("adapt", epochs, learning_rate, prepare=lambda m: unfreeze_for_masked_lm(task.backbone),
                        augment=False, task=adapt, options=dict(options)))
    return phases


class MaskedLMAdaptation(Recipe):
    """Base of `text_mlm`: adapt a BERT encoder to unlabeled text with a masked LM; save it as a keras-hub preset.

    A recipe may override `load_adaptation_texts()` (documents, where from, notes); by default it
    reads `--data-dir` with `text.adapt_data` (a folder of .txt files, a text file with one
    document a line, or a CSV/TSV column). Its one phase trains `epochs` at `learning_rate`; the run
    reports held-out perplexity before and after (metrics.json) and saves the encoder to
    `saved_models/<name>-encoder/<version>/`.

    Args:
        config: a `MaskedLMConfig`; None means the recipe's defaults.

    Examples:
        >>> from tl_app.text import MaskedLMAdaptation, MaskedLMConfig
        >>> class Notes(MaskedLMAdaptation):
        ...     '''Clinic notes, one a line.'''
        ...     defaults = MaskedLMConfig(preset="offline", sequence_length=64, epochs=2)
        >>> Notes().config.epochs
        2
    """

    Config = MaskedLMConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.resolved = None
        self.tokenizer = None
        self.preprocessor = None
        self.adaptation = None

    def load_adaptation_texts(self):
        """(documents, where they come from, notes): by default `--data-dir` read by `text.adapt_data`."""
        from tl_app.text.adapt_data import read_adapt_texts

        cfg = self.config
        if not cfg.data_dir:
            raise UserError(f"{self.name or 'this recipe'} needs --data-dir PATH: a folder of .txt files, a text file"
                            " with one document a line, or a .csv/.tsv file (--set adapt_column=...).")
        return read_adapt_texts(cfg.data_dir, cfg.adapt_column, "--data-dir")

    @property
    def precision_workload(self):
        """`text_fine_tune`, or `text_fine_tune_small` for a narrow encoder (mixed_precision=auto; after load_data)."""
        from tl_app.engine.precision import text_workload
        from tl_app.text.presets import encoder_width

        return text_workload(encoder_width(self.resolved) if self.resolved is not None else None)

    def load_data(self):
        import tensorflow as tf

        from tl_app.text.packing import MIN_SEQUENCE_LENGTH
        from tl_app.text.presets import load_tokenizer, require_masked_lm, resolve_preset

        cfg = self.config
        if cfg.sequence_length < MIN_SEQUENCE_LENGTH:
            raise UserError(f"--set sequence_length={cfg.sequence_length}: must be at least {MIN_SEQUENCE_LENGTH}.")
        self.resolved = resolve_preset(cfg.preset)
        self.tokenizer = load_tokenizer(self.resolved)
        require_masked_lm(self.resolved, f"preset={cfg.preset}")  # BertMaskedLM: BERT encoders only
        self.adaptation = load_adaptation(cfg, self.tokenizer, *self.load_adaptation_texts())
        train, heldout = (tf.data.Dataset.from_tensor_slices(tf.constant(t, tf.string))
                          for t in (self.adaptation.train, self.adaptation.heldout))
        return DataSplits(train=train, validation=heldout, test=heldout, class_names=[], test_split_name="held-out",
                          notes=self.adaptation.notes)

    def build_model(self, data):
        from tl_app.text.masked_lm import masked_lm
        from tl_app.text.masked_lm_data import masked_lm_preprocessor
        from tl_app.text.presets import load_backbone

        cfg = self.config
        backbone = load_backbone(self.resolved)
        if cfg.sequence_length > backbone.max_sequence_length:
            raise UserError(f"--set sequence_length={cfg.sequence_length}: this encoder has "
                            f"{backbone.max_sequence_length} positions; choose at most that.")
        log.info(f"encoder: {self.resolved.description}; {backbone.num_layers} layers, hidden {backbone.hidden_dim},"
                 f" {backbone.count_params():,} parameters; sequence_length {cfg.sequence_length}")
        self.preprocessor = masked_lm_preprocessor(self.tokenizer, cfg.sequence_length)
        return masked_lm(backbone, self.resolved)

    def phase_fields(self):
        """`adapt_head` (a new head alone) reads `head_epochs` and `head_learning_rate`, `adapt` the common fields."""
        from tl_app.phase_fields import PhaseFields

        return [PhaseFields.reading("adapt_head", "head_epochs", learning_rate="head_learning_rate"),
                PhaseFields.reading("adapt", "epochs")]

    def phases(self, model):
        from tl_app.text.masked_lm import MaskedLMTask

        cfg = self.config
        task = MaskedLMTask(model.backbone, self.resolved, self.preprocessor, self.adaptation, cfg.seed, model=model)
        return adapt_phases(cfg.epochs, cfg.learning_rate, task, cfg.head_epochs, cfg.head_learning_rate, options={})

    def metric_names(self):
        return ["perplexity"]

    def pooling(self):
        """The pooling the encoder's classifiers should use (the source preset's: mean for MiniLM)."""
        return self.resolved.default_pooling

    def stages(self, stages):
        """No test split and no classifier: report the held-out perplexity, save the encoder preset (no SavedModel,
        so no serving check). Also adapts `tl-app export RUN_DIR`'s stages: it saves the encoder again."""
        from tl_app.pipeline.phase_results import PhaseResults
        from tl_app.text.encoder_preset import EncoderExport

        replace = {"evaluate": PhaseResults("held-out"), "export": EncoderExport()}
        return [replace.get(stage.name, stage) for stage in stages if stage.name != "serving_check"]
