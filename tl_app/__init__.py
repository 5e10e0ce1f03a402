"""tl_app: transfer-learning recipes on Keras/TensorFlow, exported for TF Serving.

    import tl_app
    result = tl_app.run("digits", epochs=5)              # any config field, as with --set
    result.metrics["accuracy"], result.export_path, result.run_dir

- `tl_app.run(recipe, config=None, **fields)`: one run end to end (see `tl_app.api.run`).
- `tl_app.select(recipe, bases="offline", **fields)`: rank the candidate bases on frozen features
  (`tl-app select`); `tl_app.tune(recipe, ...)`: search hyperparameters with KerasTuner (`tl-app tune`).
- `tl_app.Recipe`, `tl_app.register`: write a recipe of your own (docs/writing-a-recipe.md); the families'
  base classes are `tl_app.image.ImageClassification`, `tl_app.text.BertTextClassification` and
  `tl_app.mlp.MLPClassifier`.
- `tl_app.RunOptions`, `tl_app.RunResult`, `tl_app.UserError`.

Import cost matters for the CLI, so importing this package imports no TensorFlow;
the modules that need it load it when they run.
"""
from tl_app import select  # the package is callable: tl_app.select(...) is tl_app.api.select
from tl_app.api import run, tune
from tl_app.errors import UserError
from tl_app.pipeline.context import RunOptions, RunResult
from tl_app.recipe import Recipe
from tl_app.registry import register

__version__ = "0.1.0"
__all__ = ["Recipe", "RunOptions", "RunResult", "UserError", "register", "run", "select", "tune"]
