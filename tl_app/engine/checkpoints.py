"""Per-epoch checkpoints of a run, written atomically, for `--resume` after any kill.

A checkpoint is one `.npz` file in `runs/<recipe>/<run-id>/checkpoints/` with
the full model's weights, the phase's optimizer variables (its iteration count
drives the learning-rate schedule), early stopping's best weights and, in a
phase that trains another model (`engine.phase_task`), that model's own
variables (e.g. a masked-LM head), plus
`checkpoint.json` naming it with the training state: which phase, how many of
its epochs are done, how many epochs are done over all phases (the next
TensorBoard step), and the figures phases reported (`results`). Files are written to a
temporary name, fsynced and renamed (`tl_app.atomic`), and `checkpoint.json` is replaced
only after the `.npz` it names is complete, so a SIGKILL at any moment leaves the previous
checkpoint intact; the run that resumes removes the temporaries a killed one left.

A phase that trains a head on cached features changes only the head's variables: the full model's
weights are written once when it begins (`base-phaseNN.npz`), and each of its checkpoints holds only
the head's (`ckpt-...+base-phaseNN.npz`: the full model's weights at `indices`; `load` puts them back
on the base's). For a text encoder that is ~90 MB once instead of every epoch.

Why not `keras.callbacks.BackupAndRestore`: it restores one `fit` call and
knows nothing of phases (a different trainable set and a fresh optimizer per
phase, or a head trained on cached features), so the state here is the
framework's own: phase index + epoch + weights + optimizer variables.
"""
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from tl_app.atomic import write_atomic, write_json

STATE_FILE = "checkpoint.json"
BASE_PREFIX = "base-"


@dataclass
class TrainingState:
    """Where training stands.

    Args:
        phase: index of the phase to run next (or the one in progress).
        phase_epochs_done: epochs of that phase completed.
        epoch: epochs completed over all phases (the next epoch's TensorBoard step).
        early_stopping: the phase's early-stopping counters (best, wait, best_epoch).
        results: figures phases reported so far (name -> float, e.g. perplexity before and after adaptation).
    """

    phase: int = 0
    phase_epochs_done: int = 0
    epoch: int = 0
    early_stopping: Dict[str, Any] = field(default_factory=dict)
    results: Dict[str, float] = field(default_factory=dict)


@dataclass
class Checkpoint:
    state: TrainingState
    model_weights: List[np.ndarray]
    optimizer_weights: List[np.ndarray]
    best_weights: Optional[List[np.ndarray]]
    path: str
    # Variables of a phase task's model that the full model lacks (`engine.phase_task.task_variables`).
    task_weights: List[np.ndarray] = field(default_factory=list)


def _stack(prefix, arrays):
    return {f"{prefix}/{i:05d}": np.asarray(a) for i, a in enumerate(arrays or [])}


def _unstack(npz, prefix):
    keys = sorted(k for k in npz.files if k.startswith(prefix + "/"))
    return [npz[k] for k in keys]


class CheckpointStore:
    """The checkpoints of one run directory.

    Args:
        directory: `<run_dir>/checkpoints` (created on first save).
        keep: how many checkpoint files to keep (the newest).
    """

    def __init__(self, directory, keep=2):
        self.directory = directory
        self.keep = keep

    def save_base(self, phase_index, model_weights):
        """Write the full model's weights for the partial checkpoints of phase `phase_index`; returns the file's name.

        Args:
            phase_index: the phase whose checkpoints will hold only the variables it trains.
            model_weights: the full model's weights as the phase begins (`model.get_weights()`).
        """
        os.makedirs(self.directory, exist_ok=True)
        name = base_name(phase_index)
        write_atomic(os.path.join(self.directory, name), lambda f: np.savez(f, **_stack("model", model_weights)))
        return name

    def save(self, state, model_weights, optimizer_weights=(), best_weights=None, task_weights=(), base=None):
        """Write a checkpoint and point `checkpoint.json` at it; returns its path.

        Args:
            state: the `TrainingState`.
            model_weights: the full model's weights, or with `base` those at its indices only.
            optimizer_weights: the phase's optimizer variables.
            best_weights: early stopping's best weights (of the model the phase fits), or None.
            task_weights: a phase task's own variables (`engine.phase_task.task_variables`).
            base: None, or `(name, indices)`: the `save_base` file holding the rest of the full model's
                weights, and the indices in the full model's weights of `model_weights`.
        """
        os.makedirs(self.directory, exist_ok=True)
        name = f"ckpt-epoch{state.epoch:05d}-phase{state.phase:02d}-{state.phase_epochs_done:04d}"
        name += f"+{base[0]}" if base is not None else ".npz"
        path = os.path.join(self.directory, name)
        arrays = {**_stack("model", model_weights), **_stack("optimizer", optimizer_weights),
                  **_stack("task", task_weights)}
        if best_weights is not None:
            arrays.update(_stack("best", best_weights))
        if base is not None:
            if not os.path.isfile(os.path.join(self.directory, base[0])):
                raise ValueError(f"checkpoint {name}: its base {base[0]} was not written")
            arrays["indices"] = np.asarray(base[1], np.int64)
        write_atomic(path, lambda f: np.savez(f, **arrays))
        pointer = {"file": name, "state": asdict(state)}
        write_json(os.path.join(self.directory, STATE_FILE), pointer)
        self._prune(keep_name=name)
        return path

    def _prune(self, keep_name):
        """Keep the newest `keep` checkpoints and the base files they stand on."""
        files = sorted(n for n in os.listdir(self.directory) if n.startswith("ckpt-") and n.endswith(".npz"))
        for old in [n for n in files if n != keep_name][: max(0, len(files) - self.keep)]:
            os.remove(os.path.join(self.directory, old))
        used = {n.split("+", 1)[1] for n in os.listdir(self.directory) if n.startswith("ckpt-") and "+" in n}
        for old in os.listdir(self.directory):
            if old.startswith(BASE_PREFIX) and old.endswith(".npz") and old not in used:
                os.remove(os.path.join(self.directory, old))

    def state(self):
        """The TrainingState of the latest checkpoint, or None when there is none."""
        pointer_path = os.path.join(self.directory, STATE_FILE)
        if not os.path.exists(pointer_path):
            return None
        with open(pointer_path, encoding="utf-8") as f:
            pointer = json.load(f)
        return TrainingState(**pointer["state"]), pointer["file"]

    def load(self):
        """The latest Checkpoint, or None when the run has none."""
        found = self.state()
        if found is None:
            return None
        state, name = found
        path = os.path.join(self.directory, name)
        with np.load(path) as npz:
            best = _unstack(npz, "best")
            model = _unstack(npz, "model")
            if "+" in name:  # a partial checkpoint: its model weights go on its base's
                with np.load(os.path.join(self.directory, name.split("+", 1)[1])) as base:
                    full = _unstack(base, "model")
                for index, value in zip(npz["indices"].tolist(), model):
                    full[index] = value
                model = full
            return Checkpoint(state, model, _unstack(npz, "optimizer"), best or None, path, _unstack(npz, "task"))


def base_name(phase_index):
    """The file name of phase `phase_index`'s base weights (`CheckpointStore.save_base`)."""
    return f"{BASE_PREFIX}phase{phase_index:02d}.npz"


def restore_variables(variables, values, what):
    """Assign saved `values` to `variables` (same count and shapes, else ValueError naming `what`)."""
    if len(variables) != len(values):
        raise ValueError(f"checkpoint has {len(values)} {what} variables, the phase has {len(variables)}: "
                         "the recipe's phases or models changed since the checkpoint")
    for target, value in zip(variables, values):
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{what} variable {target.path}: shape {tuple(target.shape)} vs {value.shape} in the checkpoint")
        target.assign(value)


def restore_optimizer(optimizer, variables, values):
    """Build `optimizer` for `variables` and load its saved variable values (iterations, moments)."""
    if not optimizer.built:
        optimizer.build(variables)
    restore_variables(optimizer.variables, values, "optimizer")
