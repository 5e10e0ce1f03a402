"""Recipes from files, from installed packages and from Python; the README and docs examples run as written."""
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from helpers import assert_one_line_error as _one_line_error
from helpers import run_python, run_tl_app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MY_RECIPE = '''
"""A digits variant from a user's file."""
from tl_app.mlp import MLPConfig
from tl_app.recipes.digits import Digits


class SmallDigits(Digits):
    """Digits with a smaller hidden layer, from a file."""

    defaults = MLPConfig(epochs=3, hidden_units=32)
'''


def _python_block(markdown_path, must_contain):
    """The first ```python block of a Markdown file that contains `must_contain`."""
    text = open(markdown_path, encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    matching = [b for b in blocks if must_contain in b]
    assert matching, f"no python block with {must_contain!r} in {markdown_path}"
    return matching[0]


# ---- the public Python API ------------------------------------------------------
def test_the_readme_python_example_runs_as_written(workdir):
    code = _python_block(os.path.join(ROOT, "README.md"), "tl_app.run(")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.metrics["accuracy"] > 0.8
    assert result.export_path == os.path.join("saved_models", "digits", "1")
    assert os.path.isfile(os.path.join(result.run_dir, "complete.json"))
    assert json.load(open(os.path.join(result.run_dir, "config.json")))["epochs"] == 5


def test_run_takes_config_fields_and_run_options_as_keywords(workdir):
    import tl_app

    result = tl_app.run("digits", epochs=2, hidden_units=16, export=False, run_id="kw")
    assert result.export_path is None and result.run_dir.endswith(os.path.join("digits", "kw"))
    saved = json.load(open(os.path.join(result.run_dir, "config.json")))
    assert (saved["epochs"], saved["hidden_units"]) == (2, 16)
    with pytest.raises(tl_app.UserError, match="'epocs' is not a config field of digits.*'epochs'"):
        tl_app.run("digits", epocs=2)
    with pytest.raises(tl_app.UserError, match="epochs: 2.5 is not a valid int"):
        tl_app.run("digits", epochs=2.5)
    with pytest.raises(tl_app.UserError, match="dropout=1.5: must be in"):
        tl_app.run("digits", dropout=1.5)
    assert not (workdir / "saved_models").exists()


def test_public_names():
    import tl_app
    from tl_app.image import ImageClassification
    from tl_app.mlp import MLPClassifier
    from tl_app.text import BertTextClassification

    for family in (ImageClassification, MLPClassifier, BertTextClassification):
        assert issubclass(family, tl_app.Recipe)
    assert callable(tl_app.register) and tl_app.RunOptions().export_dir == "saved_models"


def test_import_list_and_help_load_no_tensorflow():
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        import tl_app
        from tl_app.cli import cli
        for args in (["list"], ["--help"], ["run", "--help"], ["config", "image_folder"], ["config", "text_csv"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, (args, result.output)
        heavy = sorted(m for m in ("tensorflow", "keras", "keras_hub", "tensorflow_datasets") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout


# ---- recipes from files -----------------------------------------------------------
def test_a_recipe_in_a_file_runs_from_the_cli_and_from_python(workdir, cli):
    (workdir / "my_recipe.py").write_text(MY_RECIPE)
    listed = cli("list", "my_recipe.py")
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith("small_digits "))
    assert f"file {workdir / 'my_recipe.py'}" in line and "from a file" in line

    result = cli("run", "my_recipe.py", "--seed", "3")
    assert result.exit_code == 0, result.output
    export = workdir / "saved_models" / "small_digits" / "1"
    config = json.loads((export / "assets.extra" / "config.json").read_text())
    assert config["recipe"] == "small_digits" and config["hidden_units"] == 32 and config["epochs"] == 3
    assert config["recipe_file"] == f"{workdir / 'my_recipe.py'}:SmallDigits"

    import tl_app

    again = tl_app.run(str(workdir / "my_recipe.py:SmallDigits"), seed=3, export=False)
    assert again.metrics == json.loads((export / "assets.extra" / "metrics.json").read_text())


def test_a_recipe_file_with_a_registered_name_and_helpers_beside_it(workdir, cli):
    (workdir / "helper_data.py").write_text("CLASSES = [str(d) for d in range(10)]\n")
    (workdir / "named.py").write_text(textwrap.dedent('''
        import tl_app
        from helper_data import CLASSES
        from tl_app.recipes.digits import Digits

        @tl_app.register("my_named_digits")
        class Named(Digits):
            """Named with @register."""
            assert CLASSES[0] == "0"
    '''))
    result = cli("run", "named.py", "--epochs", "1", "--no-export")
    assert result.exit_code == 0, result.output
    assert (workdir / "runs" / "my_named_digits").is_dir()


@pytest.mark.parametrize("source, spec, fragments", [
    (None, "missing.py", ["recipe file missing.py: no such file"]),
    ("X = 1\n", "empty.py", ["defines no Recipe subclass"]),
    (MY_RECIPE + "\nclass Other(SmallDigits):\n    pass\n", "two.py",
     ["several Recipe subclasses (Other, SmallDigits)", "two.py:Other"]),
    (MY_RECIPE, "one.py:Nope", ["no Recipe subclass named Nope", "SmallDigits"]),
    ("import os\n\nvalue = 1\nraise ValueError('the data path is not configured')\n", "raises.py",
     ["raises.py, line 4 raised ValueError on import: the data path is not configured"]),
    ("def broken(:\n    pass\n", "syntax.py", ["syntax.py, line 1: SyntaxError"]),
    ("import tl_app\nfrom tl_app.recipes.digits import Digits\n\n@tl_app.register('digits')\nclass Mine(Digits):\n"
     "    '''Mine.'''\n", "clash.py", ["recipe name 'digits' is registered twice", "built-in", "file "]),
])
def test_bad_recipe_files_give_one_line(workdir, cli, source, spec, fragments):
    if source is not None:
        (workdir / spec.split(":")[0]).write_text(source)
    _one_line_error(cli("run", spec), *fragments)
    assert not (workdir / "runs").exists()


def test_file_py_colon_class_picks_one_of_several(workdir, cli):
    (workdir / "two.py").write_text(MY_RECIPE + "\nclass OtherDigits(SmallDigits):\n    '''The other.'''\n")
    result = cli("run", "two.py:OtherDigits", "--epochs", "1", "--no-export")
    assert result.exit_code == 0, result.output
    assert (workdir / "runs" / "other_digits").is_dir()


# ---- recipes from installed packages (entry points) --------------------------------
PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"

[project.entry-points."tl_app.recipes"]
{entries}
"""


def _install(tmp_path, name, module, entries, source):
    """pip-install a tiny package (offline, no build isolation) into its own target folder; returns the folder."""
    src = tmp_path / f"src-{name}"
    (src / module).mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT.format(name=name, entries=entries))
    (src / module / "__init__.py").write_text(source)
    target = tmp_path / f"site-{name}"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                           "--no-index", "--target", str(target), str(src)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return str(target)


def test_a_package_adds_recipes_through_the_entry_point_group(workdir, tmp_path):
    good = _install(tmp_path, "tl-app-example-recipes", "example_recipes",
                    'example_digits = "example_recipes:ExampleDigits"',
                    "from tl_app.recipes.digits import Digits\n\n\nclass ExampleDigits(Digits):\n"
                    "    '''Digits from a plugin package.'''\n")
    broken = _install(tmp_path, "tl-app-broken-recipes", "broken_recipes", 'broken = "broken_recipes:Broken"',
                      "import a_module_that_does_not_exist\n")
    env = {"PYTHONPATH": os.pathsep.join([good, broken])}
    listed = run_tl_app(["list"], cwd=workdir, env_extra=env)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("example_digits "))
    assert "package tl-app-example-recipes" in line and "Digits from a plugin package." in line
    assert re.search(r"^digits\s+built-in\s", listed.stdout, re.MULTILINE)
    warning = [line for line in listed.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "tl-app-broken-recipes" in warning[0] and "ModuleNotFoundError" in warning[0]

    ran = run_tl_app(["run", "example_digits", "--epochs", "2", "--no-export"], cwd=workdir, env_extra=env)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert (workdir / "runs" / "example_digits").is_dir()

    clash = _install(tmp_path, "tl-app-clashing-recipes", "clashing_recipes", 'digits = "clashing_recipes:Mine"',
                     "from tl_app.mlp import MLPClassifier\n\n\nclass Mine(MLPClassifier):\n    '''Mine.'''\n")
    proc = run_tl_app(["list"], cwd=workdir, env_extra={"PYTHONPATH": clash})
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1
    assert "recipe name 'digits' is registered twice" in proc.stderr and "package tl-app-clashing-recipes" in proc.stderr


def test_setup_py_entry_points_match_the_recipes_names():
    from tl_app import registry

    for name in registry.names():
        cls = registry.get(name)
        if registry.source(name) == registry.BUILT_IN:
            assert cls.name == name and cls.__module__.startswith("tl_app.recipes.")


# ---- the guide's custom recipe runs as written ---------------------------------------
def test_the_writing_a_recipe_guide_runs_its_csv_images_recipe(workdir, cli):
    code = _python_block(os.path.join(ROOT, "docs", "writing-a-recipe.md"), "# csv_images.py")
    (workdir / "csv_images.py").write_text(code)
    rng = np.random.default_rng(0)
    (workdir / "img").mkdir()
    rows = ["path,label"]
    for i in range(24):
        label = "red" if i % 2 else "blue"
        color = (200, 40, 40) if label == "red" else (40, 40, 200)
        pixels = np.clip(rng.normal(0, 20, (40, 40, 3)) + color, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(workdir / "img" / f"{i:03d}.png")
        rows.append(f"img/{i:03d}.png,{label}")
    (workdir / "photos.csv").write_text("\n".join(rows) + "\n")

    listed = cli("list", "csv_images.py")
    assert re.search(r"^csv_images\s+file .*csv_images.py\s+Images listed in a CSV", listed.output, re.MULTILINE)
    result = cli("run", "csv_images.py", "--data-dir", "photos.csv", "--set", "alpha=0.35", "--set", "image_size=32",
                 "--set", "weights=none", "--epochs", "1", "--set", "fine_tune_epochs=0", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    export = workdir / "saved_models" / "csv_images" / "1"
    assert (export / "assets.extra" / "labels.txt").read_text().split() == ["blue", "red"]
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export))
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([(workdir / "img" / "000.png").read_bytes()]))
    assert out["class_name"].numpy()[0].decode() in ("blue", "red")
    _one_line_error(cli("run", "csv_images.py", "--data-dir", "nowhere.csv"), "name a CSV file with the columns")
