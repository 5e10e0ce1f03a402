"""`base=auto` (image) / `preset=auto`-style choice by selection: the prepare stage's step that picks the base.

When the recipe's `base_field` says `auto` and the recipe ranks bases (`Recipe.base_field`), the run first
ranks the candidates with `tl-app select`'s code (reusing a finished selection of the same features), trains
the winner, and records it: `resolved` in config.json holds the winner (so `--config` repeats the run with
it) and `selection` the ranking and the selection.json it came from. A resumed run keeps what it recorded.
"""
import dataclasses

from tl_app import log
from tl_app.config_file import RESOLVED_KEY, SELECTION_KEY
from tl_app.errors import UserError
from tl_app.pipeline import run_dirs

AUTO = "auto"


def _auto_field(recipe):
    """The recipe's base field when it says `auto` and the recipe chooses bases by selection, else None.

    The text family's `preset=auto` keeps its own meaning (a keras-hub preset when reachable, else offline).
    """
    field = recipe.base_field
    if field and field == "base" and getattr(recipe.config, field) == AUTO:
        return field
    return None


def check_auto_base(ctx):
    """`base=auto` cannot start from an export (whose base is fixed): one line, before anything runs."""
    field = _auto_field(ctx.recipe)
    if field and ctx.options.init_from:
        raise UserError(f"--set {field}=auto chooses a base, --init-from {ctx.options.init_from} fixes it to that "
                        f"export's; drop one of them (or --set {field}=NAME of the export's base).")


def choose_base(ctx):
    """Replace `auto` in the recipe's base field by the selection's winner (or, resuming, the recorded one)."""
    field = _auto_field(ctx.recipe)
    if not field:
        return
    recipe = ctx.recipe
    if ctx.continuing:
        recorded = (run_dirs.read_json(ctx.continuing, "config.json").get(RESOLVED_KEY) or {}).get(field)
        if not recorded:
            raise UserError(f"run {ctx.continuing} says {field}=auto but recorded no choice; start a new run.")
        winner = recorded
        log.info(f"{field}=auto: {winner}, as the run being continued chose")
    else:
        from tl_app.select.choose import auto_base

        winner, record = auto_base(recipe, ctx.options.logdir)
        ctx.config_dict[SELECTION_KEY] = record
    recipe.config = dataclasses.replace(recipe.config, **{field: winner})
    ctx.auto_resolved[field] = winner
