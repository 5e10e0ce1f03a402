"""Run directories: `runs/<recipe>/<run-id>/` holding TensorBoard logs, config and metrics."""
import datetime
import json
import os

from tl_app.errors import UserError


def new_run_id():
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def create_run_dir(logdir, recipe_name, run_id=None):
    """Create and return a new run directory; never reuses an existing one."""
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


def write_json(run_dir, filename, payload):
    with open(os.path.join(run_dir, filename), "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
