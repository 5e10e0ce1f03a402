"""What a run's stages share: its options, its context, its result, and the Stage base class."""
import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from tl_app import log


def serving_check_default():
    """The serving check is on unless TL_APP_SERVING_CHECK is 0/off/false (the test suite's default: it has tests of
    its own, and every other test run would start a server process)."""
    return os.environ.get("TL_APP_SERVING_CHECK", "1").strip().lower() not in ("0", "off", "false", "no")


@dataclass
class RunOptions:
    """Where and how a run trains; not part of the recipe config (it does not change the model).

    Args:
        logdir: base of run directories (`<logdir>/<recipe>/<run-id>/`).
        export_dir: base of exports (`<export_dir>/<recipe>/<version>/`).
        export: whether to export at the end.
        run_id: name of the run directory; an existing, unfinished run of that name is continued.
        strategy: one of `tl_app.engine.strategies.STRATEGIES`.
        tpu: TPU name or address for the `tpu` / `auto` strategies.
        resume: continue the latest run of the recipe (or `run_id`'s) from its last checkpoint.
        init_from: an export directory (`saved_models/<name>/<version>`) whose weights start the model.
        loop: `auto`, `fit` or `custom` (see `tl_app.engine.trainer.Trainer`).
        collective_timeout: seconds before a multi-worker collective waiting on a dead peer fails.
        serving_check: before publishing an export, serve it in a fresh `tl-app serve` process and compare its
            answers to the in-process model's (`--no-serving-check` skips it; default: on, unless the environment
            variable TL_APP_SERVING_CHECK is 0).
        warmup_examples: validation examples written as TF Serving warmup requests into the export (0 to 1000).
        gate: quality gate conditions, e.g. `"accuracy>=0.9,f1_macro>=published-0.005"` (`tl_app.evaluate.gate`).
        gate_retries: fine-tuning rounds to try when the gate is missed, before giving up.
    """

    logdir: str = "runs"
    export_dir: str = "saved_models"
    export: bool = True
    run_id: Optional[str] = None
    strategy: str = "auto"
    tpu: Optional[str] = None
    resume: bool = False
    init_from: Optional[str] = None
    loop: str = "auto"
    collective_timeout: Optional[float] = None
    serving_check: bool = field(default_factory=serving_check_default)
    warmup_examples: int = 10
    gate: Optional[str] = None
    gate_retries: int = 0


@dataclass
class RunResult:
    """What a run produced.

    Args:
        run_dir: `runs/<recipe>/<run-id>/` (None on a non-chief worker).
        metrics: the test-split metrics (name -> value).
        export_path: the new SavedModel version, or None (no export, or a non-chief worker).
        seconds: wall time of the whole run.
        tflite_path: the TFLite package of the export (`--set tflite=...`), or None.
    """

    run_dir: Optional[str]
    metrics: dict
    export_path: Optional[str]
    seconds: float
    tflite_path: Optional[str] = None


class RunContext:
    """The state one run's stages read and fill in, in pipeline order.

    Args:
        recipe: the `Recipe`, its config resolved.
        options: the `RunOptions`.

    Attributes (set by the stages):
        config_dict: the config saved with the run and its export (`recipe` + every field + `distribution`).
        continuing: the run directory being resumed, or None.
        init_weights: the Keras weights file of `--init-from`, or None.
        choice: the `StrategyChoice` (strategy, device, chief or not).
        precision: the `engine.precision.PrecisionChoice` (float policy and why).
        data: the recipe's `DataSplits`.
        run_dir: the run directory (None on non-chief workers); scratch: a non-chief worker's scratch directory.
        model, trainer: the built model and the `Trainer` that trained it.
        metrics: test metrics; export_path: the new export (chief only); tflite_path: its TFLite package.
        before_publish: callables run on a complete export before it takes a version (see `export_model`).
        closing: an ExitStack closed when the run ends (processes and files a stage must not leave behind).
        evaluation: the test `Evaluation` (predictions, metrics, figures); evaluation_files, curves_file: its files;
            report_job: its figures and report while they are drawn (`pipeline.evaluate.wait_for_report`).
        gate: the quality gate's decision (what gate.json holds), or None without a gate.
        stages: the stages this run runs (their `check` is called once the data is loaded).
    """

    def __init__(self, recipe, options):
        from tl_app import config as config_lib
        from tl_app.recipe_files import spec_of

        self.recipe = recipe
        self.options = options
        self.started = time.time()
        self.config_dict = {"recipe": recipe.name, **config_lib.to_dict(recipe.config)}
        recipe_file = spec_of(type(recipe))
        if recipe_file:
            self.config_dict["recipe_file"] = recipe_file
        self.continuing = None
        self.auto_resolved = {}  # what the pipeline resolved before the recipe saw it (base=auto's winner)
        self.init_weights = None
        self.choice = None
        self.precision = None
        self.data = None
        self.run_dir = None
        self.created_run_dir = None
        self.scratch = None
        self.model = None
        self.trainer = None
        self.metrics = None
        self.export_path = None
        # Callables run on a complete export before it is published (the serving check adds one).
        self.before_publish = []
        # Closed when the run ends, however it ends (e.g. a serving-check server process).
        self.closing = contextlib.ExitStack()
        self.evaluation = None
        self.report_job = None  # the report's figures, drawn in the background (pipeline.evaluate.ReportJob)
        self.evaluation_files = {}
        self.curves_file = None
        self.gate = None
        self.stages = []
        self.tflite_path = None
        self.inspection = None  # the data inspection's findings (pipeline.inspect), or None
        # Functions of the test Evaluation returning more metrics.json figures (e.g. the inspection's counts).
        self.metric_extras = []
        # Functions of nothing returning Markdown lines appended to report.md (e.g. "Data issues").
        self.report_sections = []

    @property
    def config(self):
        return self.recipe.config

    @property
    def is_chief(self):
        return self.choice is None or self.choice.is_chief

    @property
    def write_dir(self):
        """Where this process writes logs and checkpoints: the run directory, or a worker's scratch."""
        return self.run_dir if self.is_chief else self.scratch

    def seconds(self):
        return time.time() - self.started

    @contextlib.contextmanager
    def cleanup(self):
        """Around the stages: a run that fails before its first checkpoint removes the run directory it
        created (left behind it would be what `--resume` picks, with whatever made it fail); a worker's
        scratch directory is always removed."""
        from tl_app.errors import RunRejected

        try:
            yield
        except RunRejected:
            raise  # trained, evaluated and refused: the run and the model it keeps stay for inspection
        except BaseException:
            run_dir = self.created_run_dir
            checkpoints = os.path.join(run_dir, "checkpoints") if run_dir else None
            if run_dir and not (os.path.isdir(checkpoints) and os.listdir(checkpoints)):
                shutil.rmtree(run_dir, ignore_errors=True)
                log.warn(f"removed {run_dir}: the run stopped before its first checkpoint")
            raise
        finally:
            self.closing.close()
            if self.scratch:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def result(self):
        return RunResult(run_dir=self.run_dir, metrics=self.metrics, export_path=self.export_path,
                         seconds=self.seconds(), tflite_path=self.tflite_path)


class Stage:
    """One named step of a run: `run(ctx)` reads and fills in the `RunContext`.

    A stage is skipped when `enabled(ctx)` is false (e.g. export under `--no-export`).
    Add a stage by subclassing this in a module of its own and naming it in
    `tl_app.pipeline.default_stages` (or passing `stages=` to `run_recipe`).

    Examples:
        >>> class Announce(Stage):
        ...     name = "announce"
        ...     def run(self, ctx):
        ...         print(f"training {ctx.recipe.name}")
    """

    name: ClassVar[str] = ""

    def enabled(self, ctx) -> bool:
        return True

    def check(self, ctx) -> None:
        """Called once the data is loaded, before anything trains: raise `UserError` for what this stage
        will not be able to do (a mistake costs seconds, not a training run). Default: nothing to check."""

    def run(self, ctx) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement run(ctx)")
