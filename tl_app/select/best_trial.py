"""Which trial `best.yaml` takes: the best on validation, unless the split cannot tell it from the run's own.

A validation accuracy measured on n examples is an estimate with a binomial standard error of about
sqrt(p(1-p)/n), and the best of many trials is biased upward by having been chosen (the winner's curse).
On BBC News, 112 validation texts tied 13 of 30 head trials at 110/112, and the one picked tested 1.5
points below the recipe's defaults, which it had beaten by one text. So `tl-app tune` applies the
one-standard-error rule of model selection (Breiman et al., 1984; Hastie, Tibshirani and Friedman, The
Elements of Statistical Learning, section 7.10), with the run's own configuration in the place of the
simplest model: it was chosen before this validation split was looked at, and the tune moves away from it
only when the best trial beats it by more than one standard error. Trials within one standard error of
the best are reported as tied with it. The standard error is Agresti and Coull's (1998): the accuracy
shrunk toward one half by two successes and two failures, so that 112 of 112 is not taken as exact.
"""
import math

from tl_app import config as config_lib
from tl_app import log


def standard_error(accuracy, examples):
    """Agresti-Coull standard error of an accuracy measured on `examples` examples.

    Args:
        accuracy: the measured fraction correct, in [0, 1].
        examples: how many examples it was measured on.

    Examples:
        >>> round(standard_error(110 / 112, 112), 4)
        0.0169
        >>> standard_error(1.0, 112) > 0  # all correct on 112 is still an estimate
        True
    """
    shrunk = (accuracy * examples + 2) / (examples + 4)
    return math.sqrt(shrunk * (1 - shrunk) / (examples + 4))


def name(row):
    """`stage trial` of a trials.csv row."""
    return f"{row['stage']} {row['trial']}"


def choose(best, rows, own, examples):
    """`(row, report)`: the row best.yaml takes, and what the choice rests on (result.json's `choice`).

    Args:
        best: the row of the best trial (the highest validation score, fine-tuning preferred on a tie).
        rows: every finished trial's row (`stage`, `trial`, `score`, ...).
        own: the rows that trained the run's own configuration (none when no trial did).
        examples: the validation examples each score was measured on.

    Examples:
        >>> rows = [{"stage": "head", "trial": "0", "score": 110 / 112},
        ...         {"stage": "fine_tune", "trial": "own", "score": 109 / 112}]
        >>> kept, report = choose(rows[0], rows, [rows[1]], 112)
        >>> name(kept), report["kept_own"], report["tied_with_best"]
        ('fine_tune own', True, ['fine_tune own'])
    """
    error = standard_error(best["score"], examples)
    tied = [name(r) for r in rows if r is not best and best["score"] - r["score"] <= error]
    report = {"validation_examples": examples, "standard_error": round(error, 5), "tied_with_best": tied,
              "best_trial": name(best), "best_score": best["score"], "kept_own": False}
    top_own = max(own, key=lambda r: r["score"]) if own else None
    if top_own is not None and top_own is not best and best["score"] - top_own["score"] <= error:
        report["kept_own"] = True
        return top_own, report
    return best, report


def own_test(recipe, fixed, fields):
    """A test of a trial's values: do they train the run's own configuration (beside the tune's `fixed` values)?

    Compared over `fields` as `tl-app run` resolves them (`Recipe.searched_values`), so that e.g. an image
    recipe's fine-tuning learning rate left at None equals a trial's explicit tenth of the head's.

    Args:
        recipe: the Recipe being tuned (its config is the run's own).
        fixed: the values every trial has (the search space's plain values, `deterministic`).
        fields: the fields that tell two configurations apart (the searched ones and the epochs).
    """
    def resolved(values):
        return type(recipe)(config_lib.apply_values(recipe.config, values, recipe.name)).searched_values(fields)

    own = resolved(fixed)
    return lambda values: bool(values) and resolved(values) == own


def validation_examples(recipe, fixed):
    """How many examples the trials' validation figures were measured on: the run's validation split.

    Inside the tune's `reused_data()` scope the trials' decoded data are reused (images); text is read again.
    """
    data = type(recipe)(config_lib.apply_values(recipe.config, fixed, recipe.name)).load_data()
    count = int(data.validation.cardinality())
    return count if count >= 0 else sum(1 for _ in data.validation)


def log_choice(kept, report, head_alone):
    """Log the trials tied with the best, and why best.yaml holds `kept` (`head_alone`: a head trial won a tune
    that also searched fine-tuning)."""
    error, examples = report["standard_error"], report["validation_examples"]
    if report["tied_with_best"]:
        log.info(f"tune: {len(report['tied_with_best'])} trial(s) within one standard error ({error:.4f} on {examples}"
                 f" validation examples) of the best, {report['best_trial']} ({report['best_score']:.4f}): "
                 f"{', '.join(report['tied_with_best'])}; the validation split does not tell them apart")
    if report["kept_own"]:
        log.info(f"tune: the best trial ({report['best_trial']}, {report['best_score']:.4f}) beats the run's own "
                 f"configuration ({name(kept)}, {kept['score']:.4f}) by no more than one standard error:"
                 " best.yaml keeps the run's own configuration")
    elif head_alone:
        log.info("tune: fine-tuning scored below the head alone: best.yaml trains the head only")
