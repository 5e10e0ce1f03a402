"""The export stage's library: versioned SavedModels in TF Serving's layout.

- `savedmodel`: write a complete new version (`saved_models/<model>/<N>/`), never overwriting one.
- `signatures`: the serving signatures every classification export has.
- `servable_ops`: which ops an export needs, checked against what TF Serving's model server has.
"""
