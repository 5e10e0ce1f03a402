"""`tl-app select` and `base=auto`: score the candidates, rank them, write `selection.json`, print the table.

A selection already finished for the same candidates and the same features (the
feature-store keys of every split, which cover data, base, weights and float
policy) is not scored again: its figures are reused, and only the bases whose
features changed are probed anew.
"""
import dataclasses
import os
import time

from tl_app import log
from tl_app.errors import UserError
from tl_app.select.selection import (RUN_PREFIX, BaseScore, finished_selections, rank, read_selection, score_bases,
                                     write_selection)


def _earlier_scores(logdir, recipe_name, seed):
    """{(base, feature keys): its probe and LogME} from the finished selections of this recipe and seed."""
    found = {}
    for path in reversed(finished_selections(logdir, recipe_name)):  # newest last: it wins
        try:
            payload = read_selection(path)
        except (OSError, ValueError):
            continue
        if payload.get("seed") != seed:
            continue
        for entry in payload.get("ranking", []):
            if entry.get("probe") and entry.get("feature_keys"):
                found[(entry["base"], tuple(entry["feature_keys"]))] = (entry["probe"], entry["logme"], path)
    return found


def select(recipe, bases="offline", logdir="runs", run_id=None, max_params=None, max_latency_ms=None,
           keep_features=True):
    """Rank `recipe`'s candidate bases by a k-fold probe and LogME on frozen features; returns selection.json's dict.

    Args:
        recipe: a Recipe with a `base_field` (image: `base`, text: `preset`), config resolved.
        bases: "offline" (the bases whose weights are prepared offline), "all", or "name1,name2,...".
        logdir: the selection goes to `<logdir>/<recipe>/select-<run-id>/selection.json`.
        run_id: the name after `select-` (default: a timestamp).
        max_params: drop bases whose whole model has more parameters.
        max_latency_ms: drop bases whose batch-1 call takes longer (p50, in-process traced graph).
        keep_features: keep the extracted features in the feature store (a later run or select reuses them).

    Examples:
        >>> import tl_app  # doctest: +SKIP
        >>> tl_app.select("image_folder", data_dir="photos", bases="offline")["winner"]  # doctest: +SKIP
        'mobilenet_v2'
    """
    from tl_app import run_paths
    from tl_app.engine.feature_store import FeatureStore

    field = recipe.base_field
    candidates = recipe.base_candidates(bases)  # a recipe without bases to choose raises here
    if not candidates:
        raise UserError(f"--bases {bases}: no candidate bases; name some (see `tl-app bases`).")
    limits = {"max_params": max_params, "max_latency_ms": max_latency_ms}
    for name, value in limits.items():
        if value is not None and value <= 0:
            raise UserError(f"--{name.replace('_', '-')} {value}: must be positive.")
    run_paths.check_run_id(run_id)
    earlier = _earlier_scores(logdir, recipe.name, recipe.config.seed)
    start = time.perf_counter()
    store = FeatureStore() if keep_features else None

    def recipe_for(base):
        return type(recipe)(dataclasses.replace(recipe.config, **{field: base}))

    scores = score_bases(recipe_for, candidates, limits, store, earlier)
    seconds = time.perf_counter() - start
    run_dir = run_paths.create_run_dir(logdir, recipe.name, RUN_PREFIX + (run_id or run_paths.new_run_id()))
    payload = write_selection(run_dir, recipe, candidates, scores, limits, seconds)
    payload["path"] = os.path.join(run_dir, "selection.json")
    if payload["winner"] is None:
        reasons = "; ".join(f"{s.base}: {s.dropped}" for s in scores)
        raise UserError(f"no candidate base could be scored ({reasons}); selection written to {payload['path']}.")
    return payload


def table(payload):
    """The ranking as lines of text (what `tl-app select` prints)."""
    head = f"{'':2}{'base':<22}{'probe accuracy':>18}{'f1_macro':>10}{'LogME':>9}{'features s':>12}{'parameters':>13}" \
           f"{'p50 ms':>8}"
    lines = [head]
    for i, entry in enumerate(payload["ranking"]):
        mark = "* " if entry["base"] == payload["winner"] else "  "
        if not entry.get("probe"):
            lines.append(f"{mark}{entry['base']:<22}dropped: {entry['dropped']}")
            continue
        p = entry["probe"]
        feats = f"{entry['feature_seconds']:.1f}" + (" (kept)" if entry["features_reused"] else "")
        lines.append(f"{mark}{entry['base']:<22}{p['accuracy']:>11.4f} ± {p['accuracy_std']:.4f}{p['f1_macro']:>10.4f}"
                     f"{entry['logme']:>9.3f}{feats:>12}{entry['parameters']:>13,}{entry['latency_ms']:>8.1f}")
    return lines


def tie_line(payload):
    """A sentence naming the bases the probe cannot tell from the winner, or None."""
    tied = payload["tied_with_winner"]
    if not tied:
        return None
    return (f"within one fold spread of {payload['winner']}: {', '.join(tied)} (the probe does not tell them apart;"
            " fine-tuning may order them otherwise: try them with --set base=NAME)")


def log_table(payload):
    for line in table(payload):
        log.info(line)
    log.info(f"winner: {payload['winner']} (ranked by {payload['ranked_by']}); {payload['path']}")
    tied = tie_line(payload)
    if tied:
        log.info(tied)


def auto_base(recipe, logdir, bases="offline"):
    """The winner of a selection for `recipe` (whose base field says `auto`) and why, for config.json.

    Returns:
        (winner, record): record = {"selection": path, "ranked_by": ..., "ranking": [(base, accuracy), ...]}.
    """
    field = recipe.base_field
    payload = select(recipe, bases, logdir, keep_features=recipe.config.keep_features)
    log_table(payload)
    record = {"selection": payload["path"], "ranked_by": payload["ranked_by"],
              "tied_with_winner": payload["tied_with_winner"],
              "ranking": [[e["base"], e["probe"]["accuracy"] if e.get("probe") else None] for e in payload["ranking"]]}
    log.info(f"{field}=auto: chose {payload['winner']}")
    return payload["winner"], record


__all__ = ["BaseScore", "auto_base", "log_table", "rank", "select", "table", "tie_line"]
