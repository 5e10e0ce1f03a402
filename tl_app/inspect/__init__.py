"""Data inspection: likely label errors, duplicates, train/test leaks and outliers, from a run's cached features.

A stage library (it knows no pipeline): `pipeline/inspect.py` runs it inside a run and `tl-app inspect` without
training. Modules, one concern each:

- `out_of_fold`: out-of-fold class probabilities of a k-fold logistic probe on the features (scikit-learn);
- `confident_learning`: per-class thresholds, the confident joint, pruning by noise rate, ranking (numpy);
- `duplicates`: exact duplicates (content hash of the decoded input) and near-duplicates (cosine of features),
  within and across splits (a test example with a training twin is a leak);
- `outliers`: the examples farthest from their k nearest training neighbours;
- `findings`: the rows of `data_issues.csv` and the counts of `metrics.json`;
- `inspection`: all of it over a run's splits; `exclusion`: training without the flagged examples;
- `report`: the "Data issues" section of report.md (thumbnails or excerpts).

Nothing here moves, renames or deletes an input file. Imports no TensorFlow at module level.
"""
