"""The runnable examples in the docstrings of the core and family modules run as written."""
import doctest
import importlib

import pytest

MODULES = ["tl_app.config_file", "tl_app.recipe_files", "tl_app.data.splits", "tl_app.registry", "tl_app.recipe",
           "tl_app.pipeline.context", "tl_app.mlp.classification", "tl_app.image.classification",
           "tl_app.text.classification", "tl_app.engine.regularizers", "tl_app.engine.schedules",
           "tl_app.engine.losses", "tl_app.engine.heads", "tl_app.atomic", "tl_app.phase_fields", "tl_app.text.files",
           "tl_app.engine.phase_task", "tl_app.pipeline.phase_results",
           "tl_app.text.adapt_data", "tl_app.text.masked_lm_data", "tl_app.text.masked_lm", "tl_app.text.adaptation",
           "tl_app.pipeline.evaluate", "tl_app.image.backbones.backbone", "tl_app.image.backbones.registry",
           "tl_app.image.backbones.keras_application", "tl_app.run_paths", "tl_app.select.logme", "tl_app.select.selection",
           "tl_app.select.probe", "tl_app.select.search_space", "tl_app.inspect.confident_learning", "tl_app.inspect.out_of_fold",
           "tl_app.inspect.duplicates", "tl_app.inspect.outliers", "tl_app.inspect.findings", "tl_app.inspect.inspection",
           "tl_app.inspect.exclusion", "tl_app.inspect.report", "tl_app.inspect.gradcam", "tl_app.inspect.attention_rollout",
           "tl_app.inspect.token_attributions", "tl_app.data.reuse"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
