"""Choosing for the user: rank bases on frozen features (`tl-app select`, `base=auto`) and tune hyperparameters.

- `logme`: LogME, a transferability score from features alone (You et al., ICML 2021);
- `probe`: a k-fold logistic-regression probe on features (scikit-learn);
- `selection`: scoring each candidate base (latency, parameters, features from the feature store), the ranking,
  selection.json;
- `choose`: `select()` (the command and API) and `auto_base()` (the run's `base=auto`).
"""
