"""Run directories: `runs/<recipe>/<run-id>/` holding TensorBoard logs, config and metrics."""
import json
import os

from tl_app import atomic
from tl_app.errors import UserError
from tl_app.run_paths import check_run_id, create_run_dir, new_run_id  # noqa: F401  (naming lives in core; the pipeline's name for it)


def _inside(path, folder):
    return os.path.commonpath([path, folder]) == folder


def check_apart(logdir, export_dir):
    """UserError when `logdir` and `export_dir` are the same directory or one holds the other.

    A run writes freely under its run directory; nested in the export directory it could write into
    a published version (a run id `3` is the directory of version 3), and the reverse mixes exports with runs.
    """
    runs, exports = os.path.realpath(logdir), os.path.realpath(export_dir)
    if runs == exports or _inside(runs, exports) or _inside(exports, runs):
        raise UserError(f"--logdir {logdir} and --export-dir {export_dir} overlap (one is inside the other); runs and"
                        " published versions need directories apart, e.g. --logdir runs --export-dir saved_models.")


def write_json(run_dir, filename, payload):
    """`run_dir/filename` as JSON, written atomically: a kill leaves the old file or the new one."""
    atomic.write_json(os.path.join(run_dir, filename), payload)


COMPLETE_FILE = "complete.json"


def run_path(logdir, recipe_name, run_id):
    return os.path.join(logdir, recipe_name, run_id)


def latest_run(logdir, recipe_name):
    """The most recently started run directory of `recipe_name` under `logdir`, or None."""
    base = os.path.join(logdir, recipe_name)
    if not os.path.isdir(base):
        return None
    candidates = [os.path.join(base, name) for name in os.listdir(base)
                  if os.path.isfile(os.path.join(base, name, "config.json"))]
    if not candidates:
        return None
    return max(candidates, key=lambda path: os.path.getmtime(os.path.join(path, "config.json")))


def is_complete(run_dir):
    return os.path.isfile(os.path.join(run_dir, COMPLETE_FILE))


def mark_complete(run_dir, payload):
    """Record that a run finished (training, evaluation and export): it is never resumed or reused."""
    write_json(run_dir, COMPLETE_FILE, payload)


def read_json(run_dir, filename):
    with open(os.path.join(run_dir, filename), encoding="utf-8") as f:
        return json.load(f)


def existing_run(logdir, recipe_name, run_id=None, resume=False):
    """The run directory to continue, or None for a new run.

    `--resume` continues the latest run of the recipe (or `--run-id`'s run);
    `--run-id ID` of an existing run continues it too. A complete run is
    never continued or overwritten.

    Args:
        logdir: `--logdir`.
        recipe_name: the recipe's name.
        run_id: `--run-id`, or None.
        resume: `--resume`.
    """
    if run_id:
        path = run_path(logdir, recipe_name, run_id)
        if not os.path.isdir(path):
            if resume:
                raise UserError(f"--resume --run-id {run_id}: there is no run {path} to resume.")
            return None
    elif resume:
        path = latest_run(logdir, recipe_name)
        if path is None:
            raise UserError(f"--resume: no run of {recipe_name} under {os.path.join(logdir, recipe_name)} to resume; "
                            "start one without --resume.")
    else:
        return None
    if is_complete(path):
        raise UserError(f"run {path} is complete (metrics.json, export recorded in {COMPLETE_FILE}); nothing to resume. "
                        "Start a new run without --resume / with another --run-id.")
    return path


def check_same_config(run_dir, config_dict, ignore=("distribution", "init_from", "resolved", "selection")):
    """UserError naming the fields where this command's config differs from the run's config.json."""
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(config_path):
        return  # killed before its config was written: nothing was trained yet
    saved = read_json(run_dir, "config.json")
    keys = (set(saved) | set(config_dict)) - set(ignore)
    differ = sorted(k for k in keys if saved.get(k) != config_dict.get(k))
    if differ:
        shown = ", ".join(f"{k}={saved.get(k)!r} (now {config_dict.get(k)!r})" for k in differ[:4])
        raise UserError(f"run {run_dir} was started with {shown}: resume with the original settings "
                        "(see its config.json), or start a new run.")
