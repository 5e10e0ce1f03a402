"""The built-in recipes, one file each; installed as `tl_app.recipes`.

Each is registered through the entry-point group `tl_app.recipes` in setup.py
(the registry never imports this package by name) and says only what differs:
where its data comes from and its defaults. The model, phases and export come
from its family (`tl_app.mlp`, `tl_app.image`, `tl_app.text`).
"""
