"""The Recipe base class: what a recipe says, and the hooks the framework calls.

A recipe says only what differs between tasks: which data, which model (a
pretrained base plus a new head), which training phases, how its inputs are
served. Strategy, callbacks, logging, evaluation and export live once in
`tl_app` (the engine and the run pipeline) and work for every recipe. The
families (`tl_app.image`, `tl_app.text`, `tl_app.mlp`) subclass it with
everything but the data, so a recipe is usually only `load_*` and defaults.

Conventions every recipe follows:
- `load_data` returns unbatched `(inputs, label)` datasets with int labels.
- `build_model` takes raw inputs (pixel values, image tensors, strings) and
  returns class probabilities (softmax, float32): preprocessing is inside the
  model, so the export needs no client-side code.
- `build_model` is called inside the distribution strategy's scope.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, List, Optional

from tl_app.errors import UserError
from tl_app.config import RecipeConfig
from tl_app.export.signatures import ServingSignature  # noqa: F401  (the hook's return type)
from tl_app.phase_fields import PhaseFields


@dataclass
class DataSplits:
    """Unbatched `(inputs, label)` datasets and the class names (index = label)."""

    train: Any
    validation: Any
    test: Any
    class_names: List[str]
    # What `test` really is: data sets whose test split has no labels report on another split.
    test_split_name: str = "test"
    # Lines worth telling the user about the data (skipped files, truncation, ...).
    notes: List[str] = field(default_factory=list)
    # Per test example, in order: what a person would look up (a file path, a text excerpt); None: the index.
    test_references: Optional[List[str]] = None
    # "single_label" (int labels [N]) or "multi_label" (multi-hot float labels [N, L]: tl_app.data.label_sets).
    label_mode: str = "single_label"
    # The same for the other splits ({"train": [...], "validation": [...]}), for data inspection's findings.
    references: Dict[str, List[str]] = field(default_factory=dict)


@dataclass
class FeatureCache:
    """Train a phase on precomputed features: valid while `extractor` is frozen.

    `extractor` maps raw inputs to features and `head` maps features to
    probabilities; both share their layers with the full model, so training
    `head` trains the full model's head.
    """

    extractor: Any
    head: Any


@dataclass
class Phase:
    """One stretch of training with one optimizer; epochs continue across phases."""

    name: str
    epochs: int
    learning_rate: float
    # Sets which layers train in this phase (e.g. unfreeze the top of the base).
    prepare: Optional[Callable[[Any], None]] = None
    # Set when the phase may train on cached features instead of raw inputs.
    feature_cache: Optional[FeatureCache] = None
    # Whether the recipe's training augmentation applies in this phase.
    augment: bool = True
    # Per-phase overrides of optimizer config fields (e.g. {"optimizer": "adamw"}).
    options: Dict[str, Any] = field(default_factory=dict)
    # Set when the phase trains another model that shares layers with the recipe's (a `tl_app.engine.phase_task.PhaseTask`,
    # e.g. a masked-LM around a text encoder): its own data, loss and metrics; checkpointed and resumed like any phase.
    task: Optional[Any] = None


class Recipe:
    """Base class of every recipe; subclass it and decorate with `@register(name)`.

    Args:
        config: the recipe's config (an instance of `Config`); `None` means the defaults.

    Examples:
        >>> from tl_app import registry
        >>> recipe = registry.get("digits")(None)
        >>> recipe.config.epochs
        30

        A recipe of your own (see docs/writing-a-recipe.md):

        >>> import numpy as np
        >>> from tl_app.data.arrays import splits_from_arrays
        >>> from tl_app.mlp import MLPClassifier, MLPConfig
        >>> class Noise(MLPClassifier):
        ...     '''Random 4x4 pixels, two classes.'''
        ...     defaults = MLPConfig(epochs=2)
        ...     def load_data(self):
        ...         x = np.random.default_rng(0).uniform(0, 255, (40, 4, 4)).astype("float32")
        ...         y = (x.mean(axis=(1, 2)) > 127).astype("int64")
        ...         return splits_from_arrays((x[:30], y[:30]), (x[30:], y[30:]), ["dark", "light"])
        >>> Noise().load_data().class_names
        ['dark', 'light']
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = RecipeConfig
    defaults: ClassVar[Optional[RecipeConfig]] = None
    # Name of the input of the exported `serving_default` signature.
    serving_input_name: ClassVar[str] = "inputs"
    # Config values for working from an export (`tl-app tflite`): its own weights replace pretrained ones,
    # so e.g. the image family's base weights need not be found again ({"weights": "none"}).
    export_config_values: ClassVar[Dict[str, Any]] = {}
    # Config fields that decide the model's architecture: `--init-from` an export whose config.json says
    # otherwise is refused in one line (the image family's base and width), instead of a weights mismatch.
    architecture_fields: ClassVar[tuple] = ()
    # The benchmarks/precision.py case this recipe's training resembles: `mixed_precision=auto` turns bfloat16 on
    # for it on a CPU with native bfloat16 (AMX, AVX512_BF16) where that case measured faster
    # (tl_app.engine.precision). None: float32 on CPU.
    precision_workload: ClassVar[Optional[str]] = None
    # The config field naming the pretrained base that `tl-app select` ranks and `base=auto` chooses, or None.
    base_field: ClassVar[Optional[str]] = None

    def __init__(self, config=None):
        self.config = config if config is not None else self.default_config()

    @classmethod
    def default_config(cls):
        if cls.defaults is None:
            return cls.Config()
        return dataclasses.replace(cls.defaults)

    @classmethod
    def summary(cls):
        """The one-line description shown by `tl-app list`: the docstring's first line."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    # ---- what every recipe must say -------------------------------------
    def load_data(self) -> DataSplits:
        raise NotImplementedError(f"{type(self).__name__} must implement load_data()")

    def load_evaluation_data(self) -> DataSplits:
        """The data `tl-app evaluate` scores an export on. Default: `load_data()`.

        A family whose `load_data` also prepares what only training needs (pretrained weights)
        overrides this to skip it: an export holds its own weights.
        """
        return self.load_data()

    def build_model(self, data: DataSplits):
        raise NotImplementedError(f"{type(self).__name__} must implement build_model()")

    def _classifier_of(self, model):
        """The parts of `model` (base, extractor, head) that `build_model` kept in `self._classifier`.

        For recipes whose phases and feature cache need more than the model itself.
        """
        classifier = getattr(self, "_classifier", None)
        if classifier is None or classifier.model is not model:
            raise ValueError("phases() needs the model returned by this recipe's build_model()")
        return classifier

    # ---- hooks with sensible defaults -----------------------------------
    def check_config(self):
        """Raise `UserError` for a config value this recipe cannot use; called before any data is read.

        Default: nothing (types and ranges of the common fields are checked for every recipe).
        """
    def phases(self, model) -> List[Phase]:
        """Training phases in order. Default: one phase training the whole model."""
        cfg = self.config
        return [Phase("train", cfg.epochs, cfg.learning_rate)]

    def phase_fields(self) -> List[PhaseFields]:
        """Which config fields each of `phases()` reads (`tl_app.phase_fields`); override it with `phases()`.

        `tl-app config` shows it, and a run warns about a field it sets that none of its phases reads.
        Default: the one phase `train`, its epochs in `epochs`, every setting from the field of its name.
        """
        return [PhaseFields.reading("train", "epochs")]

    def resolved_config(self):
        """`{field: value}`: what this run's `auto` fields resolved to (after `load_data`), e.g. {"weights": "offline"}.

        Recorded in the run's config.json, so `tl-app run --config` repeats the run with the same weights.
        Default: nothing to record.
        """
        return {}

    def augment(self, batched_dataset):
        """Training-only augmentation of batched `(inputs, label)` data. Default: none."""
        return batched_dataset

    def weighs_classes_in_loss(self):
        """Whether `loss()` itself applies class_weight=auto (e.g. per-label positive weights of a multi-label
        head), so the trainer passes Keras no `class_weight`. Default: False."""
        return False

    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        """Names (or Keras metric objects) tracked every epoch on train and validation: accuracy and macro F1."""
        return ["accuracy", "f1_macro"]

    def base_candidates(self, spec):
        """Names of the bases `tl-app select --bases SPEC` compares: "offline", "all" or "a,b,c".

        Default: a UserError (the recipe has no `base_field`); a family with several bases overrides it.
        """
        raise UserError(f"recipe {self.name} has no pretrained base to choose (select and base=auto work on the"
                        " image and text recipes).")

    def search_space(self):
        """`tl-app tune`'s default space: `{field: spec}` (`tl_app.select.search_space` has the format).

        Default: the head's learning rate, dropout, label smoothing, weight decay and class weighting.
        A family adds its own (hidden units, fine-tuning fields); a `--search` file replaces the whole space.
        """
        return {
            "learning_rate": {"type": "Float", "min_value": 1e-4, "max_value": 1e-2, "sampling": "log"},
            "dropout": {"type": "Choice", "values": [0.0, 0.1, 0.2, 0.3, 0.5]},
            "label_smoothing": {"type": "Choice", "values": [0.0, 0.05, 0.1]},
            "weight_decay": {"type": "Choice", "values": [0.0, 1e-4, 1e-3]},
            "class_weight": {"type": "Choice", "values": ["none", "auto"]},
        }

    def searched_values(self, fields):
        """`{field: value}`: what `tl-app run` trains with for each of `fields`, a field left at None resolved as
        the run resolves it (None where it cannot say); `tl-app tune` tries these first in each search.

        Default: the config's values. A family whose fields default to None overrides it.
        """
        return {field: getattr(self.config, field, None) for field in fields}

    def reuse_data(self, data):
        """`data` (loaded by this recipe with another base) for this recipe's base, or None to load them again.

        `tl-app select` loads the data once when the base does not change them (the image family:
        preprocessing is inside the model). Default: None.
        """
        return None

    def metric_names(self):
        """Names of `metrics()` as Keras logs them (what early stopping may monitor)."""
        return [m if isinstance(m, str) else m.name for m in self.metrics()]

    def stages(self, stages):
        """The stages of this recipe's runs, given the pipeline's defaults (`tl_app.pipeline.default_stages`).

        Default: unchanged. A recipe whose run differs (e.g. one that only pretrains an encoder and
        exports no classifier) replaces stages here, by their `name`.
        """
        return stages

    def serving_examples(self, inputs) -> Dict[str, Any]:
        """`serving_default`'s inputs (name -> batch) for a batch of raw inputs as `load_data` gives them.

        The export's warmup requests and the serving check are built from validation examples through
        this. Default: the batch as the one input `serving_input_name`; a family whose signature takes
        another form (e.g. encoded image files) converts here.
        """
        return {self.serving_input_name: inputs}

    def serving_signatures(self, model, class_names) -> Dict[str, ServingSignature]:
        """Signatures of the export. Default: `serving_default` takes the model's raw input."""
        from tl_app.export import signatures

        spec = signatures.input_spec_of(model, self.serving_input_name)
        return {"serving_default": signatures.classification_signature(model, class_names, spec)}

    def export_files(self, model) -> Dict[str, Any]:
        """More files for the export's `assets.extra/` (name -> str or bytes). Default: none."""
        return {}

    def tflite_input(self, export_dir):
        """How this recipe's export `export_dir` converts to TFLite (`tl_app.export.tflite_input.TFLiteInput`).

        Default: `serving_default` with the shapes it declares, inputs calibrated from the data as they are.
        """
        from tl_app.export.tflite_input import TFLiteInput

        return TFLiteInput("serving_default", client=f"feed `{self.serving_input_name}` as the recipe's data holds it")
