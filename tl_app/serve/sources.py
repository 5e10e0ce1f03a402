"""Where a server's models come from, re-read at every poll: which models, their directories, policies, labels.

As TF Serving's file-system source: a model is a base directory of integer version
subdirectories; its version policy says which of them to serve (`latest` N, the default 1;
`all`; `specific` versions) and its labels name versions.

- `DirectorySource(base_dir)`: every model directory under `base_dir` (TFLite and encoder
  directories hold no `saved_model.pb` and are skipped); policies and labels from
  `base_dir/models.config` when it exists (by model name: its base paths are for whichever server
  the file was written for, e.g. `/models/<name>` in a container).
- `ConfigFileSource(path)`: exactly the models of a `ModelServerConfig` file, at its base paths.
- `SingleModelSource(name, base_path)`: one model, as `tensorflow_model_server --model_name
  --model_base_path`.

Examples:
    >>> import tempfile
    >>> DirectorySource(tempfile.mkdtemp()).models()
    {}
"""
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from tl_app.export import models_config


@dataclass
class ModelEntry:
    """One model a source names.

    Args:
        name: the model name clients use.
        base_path: its directory of versions.
        policy: "latest", "all" or "specific".
        num_versions: for "latest".
        versions: for "specific".
        labels: label -> version.
    """

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: List[int] = field(default_factory=list)
    labels: Dict[str, int] = field(default_factory=dict)

    def aspired(self, on_disk):
        """Which of the versions on disk the policy serves."""
        if self.policy == "all":
            return list(on_disk)
        if self.policy == "specific":
            return [v for v in on_disk if v in self.versions]
        return list(on_disk[-max(self.num_versions, 1):]) if on_disk else []


def entry_from_proto(config, base_path=None):
    """A ModelEntry from a `ModelConfig` proto (base path overridden when given)."""
    policy = config.model_version_policy
    which = policy.WhichOneof("policy_choice") or "latest"
    return ModelEntry(
        name=config.name,
        base_path=base_path or config.base_path,
        policy=which,
        num_versions=policy.latest.num_versions or 1,
        versions=list(policy.specific.versions),
        labels=dict(config.version_labels),
    )


class ModelSource:
    """Names the models to serve; `models()` is called at every poll."""

    description = ""

    def models(self) -> Dict[str, ModelEntry]:
        raise NotImplementedError

    def versions_on_disk(self, entry):
        return models_config.version_numbers(entry.base_path)


class _CachedConfig:
    """A models.config read again only when its modification time changes."""

    def __init__(self, path):
        self.path = path
        self._stamp = None
        self._config = None

    def get(self):
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            self._stamp = self._config = None
            return None
        if stamp != self._stamp:
            self._config = models_config.read(self.path)
            self._stamp = stamp
        return self._config


class DirectorySource(ModelSource):
    def __init__(self, base_dir):
        self.base_dir = os.path.abspath(base_dir)
        self.description = f"model directories under {base_dir}"
        self._config = _CachedConfig(os.path.join(self.base_dir, models_config.CONFIG_FILE))

    def models(self):
        config = self._config.get()
        known = {c.name: c for c in config.model_config_list.config} if config is not None else {}
        entries = {}
        for name in models_config.servable_models(self.base_dir):
            path = os.path.join(self.base_dir, name)
            entries[name] = entry_from_proto(known[name], path) if name in known else ModelEntry(name, path)
        return entries


class ConfigFileSource(ModelSource):
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.description = f"the models of {path}"
        self._config = _CachedConfig(self.path)
        if self._config.get() is None:
            from tl_app.errors import UserError

            raise UserError(f"--model-config {path}: no such file.")

    def models(self):
        config = self._config.get()
        if config is None:
            return {}
        folder = os.path.dirname(self.path)
        return {c.name: entry_from_proto(c, os.path.join(folder, c.base_path)) for c in config.model_config_list.config}


class SingleModelSource(ModelSource):
    def __init__(self, name, base_path):
        models_config.check_model_name(name)
        self.entry = ModelEntry(name, os.path.abspath(base_path))
        self.description = f"model {name} at {base_path}"

    def models(self):
        return {self.entry.name: self.entry}


def source_for(base_dir=None, model_config=None, model_name=None, model_base_path=None) -> ModelSource:
    """The source `tl-app serve` options describe (one of the three)."""
    if model_config and (model_name or model_base_path):
        from tl_app.errors import UserError

        raise UserError("--model-config and --model-name/--model-base-path both name the models; give one.")
    if model_config:
        return ConfigFileSource(model_config)
    if model_name or model_base_path:
        if not (model_name and model_base_path):
            from tl_app.errors import UserError

            raise UserError("--model-name and --model-base-path go together (one model, as TF Serving takes them).")
        return SingleModelSource(model_name, model_base_path)
    return DirectorySource(base_dir or "saved_models")
