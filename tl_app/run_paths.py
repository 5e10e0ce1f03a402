"""Run-directory naming: `<logdir>/<recipe>/<run-id>/`, a new directory for every run or evaluation.

Core, not pipeline: the pipeline's runs and the stage libraries that write outside a run (`tl-app evaluate`'s
`eval-<timestamp>/`, `tl-app inspect`) name their directories the same way without importing the pipeline.
"""
import datetime
import os

from tl_app.errors import UserError


def check_run_id(run_id):
    """UserError unless `run_id` is a name: it names a directory under `<logdir>/<recipe>/`, never a path.

    Examples:
        >>> check_run_id("exp-1")
        >>> check_run_id("../elsewhere")
        Traceback (most recent call last):
        ...
        tl_app.errors.UserError: --run-id ../elsewhere: a run id is a name, not a path (no '/', '..' or absolute path); e.g. --run-id exp1.
    """
    if run_id is None:
        return
    if not run_id.strip() or run_id in (".", "..") or any(c in run_id for c in ("/", "\\", "\0")):
        raise UserError(f"--run-id {run_id}: a run id is a name, not a path (no '/', '..' or absolute path);"
                        " e.g. --run-id exp1.")


def new_run_id():
    """A run id from the local time, `YYYYmmdd-HHMMSS`; `create_run_dir` adds `-2`, `-3` ... on a clash.

    Examples:
        >>> len(new_run_id())
        15
    """
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def create_run_dir(logdir, recipe_name, run_id=None):
    """Create and return a new run directory `<logdir>/<recipe_name>/<run_id>`; never reuses an existing one.

    Args:
        logdir: the base directory (`--logdir`).
        recipe_name: the recipe's name, one directory per recipe.
        run_id: the directory's name; an existing one is a UserError. None: `new_run_id()`, with a `-N`
            suffix when that name is taken.

    Examples:
        >>> import os
        >>> create_run_dir("runs", "digits", "exp1")
        'runs/digits/exp1'
        >>> create_run_dir("runs", "digits", "exp1")
        Traceback (most recent call last):
        ...
        tl_app.errors.UserError: run runs/digits/exp1 already exists; choose another --run-id.
    """
    base = os.path.join(logdir, recipe_name)
    try:
        os.makedirs(base, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--logdir {logdir}: cannot create {base} ({exc.strerror}); name a writable directory.") from None
    stem = run_id or new_run_id()
    candidate, n = stem, 1
    while True:
        path = os.path.join(base, candidate)
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            if run_id:
                raise UserError(f"run {path} already exists; choose another --run-id.") from None
            n += 1
            candidate = f"{stem}-{n}"
