"""`tl-app`: run transfer-learning recipes and export them for TF Serving.

The CLI only parses and calls the library. Each module adds its commands to the
group (`cli.group.cli`): `recipes` (list, config), `run` (run, launch), `assets`,
`export`, `predict`, `serve` (serve, label, models-config).
A new command is a module here, imported below.
"""
from tl_app.cli import assets, recipes, run  # noqa: F401  (each adds its commands to the group)
from tl_app.cli import export, predict, serve  # noqa: F401  (export; predict; serve, label, models-config)
from tl_app.cli import evaluate  # noqa: F401  (tl-app evaluate)
from tl_app.cli import tensorboard  # noqa: F401  (tl-app tensorboard)
from tl_app.cli import tflite  # noqa: F401  (tl-app tflite)
from tl_app.cli import bases  # noqa: F401  (tl-app bases)
from tl_app.cli import select, tune  # noqa: F401  (tl-app select, tl-app tune)
from tl_app.cli.group import cli, main

__all__ = ["cli", "main"]
