"""Rank a recipe's candidate bases by what their frozen features say, before any fine-tuning epoch.

For each candidate: build the recipe's model with that base, time a batch-1 call of
the whole model, extract (or reuse, from the feature store) the frozen base's
features of the training and validation splits, and score them with a k-fold
linear probe (`probe`) and LogME (`logme`). The test split is never read. The
ranking is by probe accuracy, then LogME; `selection.json` keeps it with the
figures and each base's feature-store keys, so a later selection (or `base=auto`)
reuses the figures of the same features instead of probing them again.
"""
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from tl_app import atomic, log
from tl_app.errors import UserError
from tl_app.select.logme import logme
from tl_app.select.probe import FOLDS, check_folds, probe

SELECTION_FILE = "selection.json"
RUN_PREFIX = "select-"  # selections live in <logdir>/<recipe>/select-<id>/ (never taken for a run to resume)
LATENCY_CALLS = 20


@dataclass
class BaseScore:
    """What `select` measured of one candidate base (`dropped` says why one was not scored)."""

    base: str
    parameters: Optional[int] = None
    latency_ms: Optional[float] = None
    feature_seconds: Optional[float] = None
    features_reused: bool = False
    examples: Optional[int] = None  # train+validation examples the probe saw (the test split is not among them)
    probe: Optional[dict] = None
    logme: Optional[float] = None
    dropped: Optional[str] = None
    feature_keys: List[str] = field(default_factory=list)

    @property
    def accuracy(self):
        return self.probe["accuracy"] if self.probe else None

    def to_dict(self):
        return dataclasses.asdict(self)


def _latency_ms(model, dataset):
    """p50 milliseconds of a traced batch-1 call of `model` on the first example of unbatched `dataset`
    (what an export's graph computes per request, without the server)."""
    from tl_app.engine.features import inference_function
    from tl_app.export.litert_eval import p50_ms

    call = inference_function(model, dataset.element_spec[0])
    x = next(iter(dataset.take(1).batch(1)))[0]
    return float(p50_ms(lambda feed: call(feed).numpy(), [x], LATENCY_CALLS))


def _score(recipe, data, base, limits, batch_size, seed, store, earlier):
    """A `BaseScore` of `base` with the recipe's model built on it (or dropped by a limit)."""
    from tl_app.engine.features import frozen_feature_cache, split_features

    score = BaseScore(base)
    model = recipe.build_model(data)
    score.parameters = int(model.count_params())
    if limits.get("max_params") and score.parameters > limits["max_params"]:
        score.dropped = f"{score.parameters:,} parameters > --max-params {limits['max_params']:,}"
        return score
    score.latency_ms = _latency_ms(model, data.validation)
    if limits.get("max_latency_ms") and score.latency_ms > limits["max_latency_ms"]:
        score.dropped = f"p50 {score.latency_ms:.1f} ms > --max-latency-ms {limits['max_latency_ms']:g}"
        return score
    cache = frozen_feature_cache(recipe, model)
    if cache is None:
        raise UserError(f"recipe {recipe.name} trains no head on frozen-base features, so there is nothing to rank"
                        " bases by; select works on the image and text recipes.")
    seen = len(store.history) if store is not None else 0
    start = time.perf_counter()
    features = split_features(cache.extractor, {"train": data.train, "validation": data.validation}, batch_size, store)
    score.feature_seconds = time.perf_counter() - start
    looked_up = store.history[seen:] if store is not None else []
    score.features_reused = bool(looked_up) and all(reused for _, _, reused in looked_up)
    score.feature_keys = [key for _, key, _ in looked_up]
    x = np.concatenate([features["train"][0], features["validation"][0]]).reshape(-1, features["train"][0].shape[-1])
    y = np.concatenate([features["train"][1], features["validation"][1]]).reshape(-1)
    score.examples = int(len(y))
    kept = earlier.get((base, tuple(score.feature_keys))) if score.features_reused else None
    if kept:  # the same features scored by an earlier selection (same seed): the same figures
        score.probe, score.logme, where = kept
        log.info(f"select: {base}: probe and LogME of these features from {where}")
        return score
    check_folds(y, data.class_names)
    score.probe = probe(x, y, FOLDS, seed).to_dict()
    score.logme = logme(x, y)
    return score


def rank(scores):
    """Scored bases best first (probe accuracy, then LogME), then the dropped ones in the order given."""
    scored = sorted((s for s in scores if s.probe), key=lambda s: (-s.accuracy, -(s.logme or 0.0)))
    return scored + [s for s in scores if not s.probe]


def tied_with_winner(ranked):
    """Names of the scored bases after the winner whose probe accuracy is within one fold spread of it.

    A difference no larger than the larger of the two standard deviations over the folds is one the probe
    cannot tell from the choice of folds: the ranking between those bases is not a finding.

    Args:
        ranked: `rank(scores)`, best first.

    Examples:
        >>> scores = [BaseScore("a", probe={"accuracy": 0.873, "accuracy_std": 0.005}),
        ...           BaseScore("b", probe={"accuracy": 0.869, "accuracy_std": 0.006}),
        ...           BaseScore("c", probe={"accuracy": 0.842, "accuracy_std": 0.004})]
        >>> tied_with_winner(rank(scores))
        ['b']
    """
    scored = [s for s in ranked if s.probe]
    if not scored:
        return []
    top = scored[0]
    return [s.base for s in scored[1:]
            if top.accuracy - s.accuracy <= max(top.probe["accuracy_std"], s.probe["accuracy_std"])]


def score_bases(recipe_for, bases, limits=None, store=None, earlier=None):
    """`[BaseScore]` of each name in `bases`, in that order.

    Args:
        recipe_for: a function `base name -> Recipe` (the recipe with its base field set to that name).
        bases: candidate base names.
        limits: {"max_params": N, "max_latency_ms": MS}; a base over a limit is dropped, not scored.
        store: a `FeatureStore` (features kept and reused), or None.
        earlier: {(base, feature keys): (probe, logme, where)} of finished selections, reused for the same features.
    """
    import keras

    from tl_app.engine.precision import apply_precision
    from tl_app.engine.strategies import choose_strategy, configure_numerics

    limits = limits or {}
    choice = choose_strategy("auto")
    data = None
    scores = []
    caller_policy = keras.mixed_precision.global_policy()
    try:
        for base in bases:
            recipe = recipe_for(base)
            configure_numerics(recipe.config, choice)
            log.info(f"select: scoring base {base}")
            try:
                # Loaded once when the base does not change them (`Recipe.reuse_data`): one decoding pass in all.
                reused = recipe.reuse_data(data) if data is not None else None
                data = reused if reused is not None else recipe.load_data()
                # The float policy a run of this base would train in: its features (and store keys) are the run's.
                apply_precision(recipe.config.mixed_precision, choice.device, recipe.precision_workload)
                scores.append(_score(recipe, data, base, limits, recipe.config.batch_size, recipe.config.seed, store,
                                     earlier or {}))
            except UserError as exc:
                if len(bases) == 1:
                    raise
                log.warn(f"select: base {base} dropped: {exc}")
                scores.append(BaseScore(base, dropped=str(exc)))
    finally:
        keras.mixed_precision.set_global_policy(caller_policy)
    reasons = {s.dropped for s in scores}
    if len(scores) > 1 and len(reasons) == 1 and None not in reasons:
        raise UserError(reasons.pop())  # the same for every base: the data or the settings, not a base
    return scores


def write_selection(run_dir, recipe, candidates, scores, limits, seconds):
    """`selection.json` in `run_dir`: the ranking (best first), the winner, what was compared and how."""
    ranked = rank(scores)
    winner = ranked[0].base if ranked and ranked[0].probe else None
    payload = {
        "recipe": recipe.name,
        "candidates": list(candidates),
        "winner": winner,
        "tied_with_winner": tied_with_winner(ranked),
        "ranking": [s.to_dict() for s in ranked],
        "ranked_by": f"{FOLDS}-fold logistic-regression probe accuracy on train+validation features, then LogME"
                     " (You et al., ICML 2021); the test split is not read",
        "limits": {k: v for k, v in (limits or {}).items() if v},
        "seed": recipe.config.seed,
        "seconds": round(seconds, 2),
    }
    atomic.write_json(os.path.join(run_dir, SELECTION_FILE), payload)
    return payload


def read_selection(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def finished_selections(logdir, recipe_name):
    """Paths of the selection.json files under `<logdir>/<recipe_name>/select-*/`, newest first."""
    base = os.path.join(logdir, recipe_name)
    if not os.path.isdir(base):
        return []
    found = [os.path.join(base, name, SELECTION_FILE) for name in os.listdir(base) if name.startswith(RUN_PREFIX)]
    return sorted((p for p in found if os.path.isfile(p)), key=os.path.getmtime, reverse=True)
