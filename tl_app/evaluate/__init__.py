"""After training: what a run reports about its model, and whether it may be published.

- `predictions`: one pass over a split -> `Predictions` (labels, probabilities, references; predictions.csv);
- `metrics`: scikit-learn metrics (flat keys a gate can name), calibration bins, the confusion matrix;
- `evaluation`: an `Evaluation` (metrics + figures) and the files it writes;
- `plots`, `tables`, `report`: the figures (matplotlib, Agg), the printed and Markdown tables, report.md;
- `summaries`: TensorBoard records (images, text, graph, HParams) and reading epoch scalars back;
- `gate`: quality-gate conditions and decisions; `exported`: `tl-app evaluate` on an export;
- `tensorboard_server`: `tl-app tensorboard`.

The pipeline's `evaluate` and `gate` stages (tl_app.pipeline) call these.
"""
