"""Choosing for the user: rank bases on frozen features (`tl-app select`, `base=auto`) and tune hyperparameters.

- `logme`: LogME, a transferability score from features alone (You et al., ICML 2021);
- `probe`: a k-fold logistic-regression probe on features (scikit-learn);
- `selection`: scoring each candidate base (latency, parameters, features from the feature store), the ranking,
  selection.json; `choose`: `select()` (the command and API) and `auto_base()` (the run's `base=auto`);
- `search_space`: `tl-app tune`'s spaces (the families' defaults, `--search` files) as KerasTuner hyperparameters;
  `trial`: one trial as a run of the recipe's pipeline; `tuning`: the two searches, resume, best.yaml;
  `best_trial`: which trial best.yaml takes (the one-standard-error rule).

This package is also the function `tl_app.select(recipe, ...)` (`tl_app.api.select`): calling the module
calls it, so `tl_app.select` means the same whether or not `tl_app.select.choose` was imported.
"""
import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from tl_app.api import select

        return select(*args, **kwargs)

    __call__.__doc__ = "tl_app.select(recipe, ...): see `tl_app.api.select`."


sys.modules[__name__].__class__ = _CallableModule
