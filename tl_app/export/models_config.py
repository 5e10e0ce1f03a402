"""`saved_models/models.config`: the `ModelServerConfig` TF Serving reads with `--model_config_file`.

One entry per model directory of the export base (a directory holding integer version
subdirectories with `saved_model.pb`; TFLite and encoder directories have none and are left out):

    model_config_list {
      config {
        name: "digits"
        base_path: "/abs/path/saved_models/digits"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 1 } }
        version_labels { key: "stable" value: 3 }
      }
    }

Every export rewrites it (atomically, under a lock). A rewrite keeps what a person chose: each
model's version policy and labels, and the directory its base paths name. TF Serving needs absolute
base paths as *the server* sees them: the local directory by default, or e.g. `/models` for the
container (`tl-app models-config --base-path /models`); later rewrites keep that choice.
`tl-app label MODEL VERSION LABEL` sets a label; a label must name a version the policy loads, so a
label outside a `latest` policy turns it into `specific` (the labelled versions and the newest).

Examples:
    >>> import os, tempfile
    >>> base = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(base, "digits", "1")); open(os.path.join(base, "digits", "1", "saved_model.pb"), "w").close()
    >>> config = update(base)
    >>> [(c.name, c.model_version_policy.latest.num_versions) for c in config.model_config_list.config]
    [('digits', 1)]
"""
import os
import re

from tl_app import atomic
from tl_app.errors import UserError
from tl_app.export.savedmodel import _locked  # the export lock, here on the base directory: one writer at a time

CONFIG_FILE = "models.config"
LABEL_PATTERN = re.compile(r"^[a-zA-Z0-9_]+$")  # TF Serving's rule for version labels
SAVED_MODEL = "saved_model.pb"


def version_numbers(model_dir):
    """Integer versions under `model_dir` that hold a SavedModel, sorted (other names are ignored)."""
    try:
        names = os.listdir(model_dir)
    except OSError:
        return []
    return sorted(int(n) for n in names
                  if n.isdigit() and n.isascii() and os.path.isfile(os.path.join(model_dir, n, SAVED_MODEL)))


def servable_models(base_dir):
    """Names of the model directories under `base_dir` that TF Serving can serve (>= 1 SavedModel version)."""
    try:
        names = sorted(os.listdir(base_dir))
    except OSError:
        return []
    return [n for n in names if not n.startswith(".") and version_numbers(os.path.join(base_dir, n))]


def check_model_name(name):
    """UserError unless `name` is a plain directory name (nothing that could leave the base directory)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        raise UserError(f"model name {name!r}: not a model directory name; use a name from `ls saved_models`.")


def read(path):
    """The `ModelServerConfig` in `path` (text proto); UserError naming the file for one that does not parse."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), config)
    except OSError as exc:
        raise UserError(f"model config {path}: cannot read it ({exc.strerror}).") from None
    except text_format.ParseError as exc:
        raise UserError(f"model config {path}: not a ModelServerConfig text proto ({exc}).") from None
    return config


def to_text(config):
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def write(path, config):
    """Write `config` to `path` atomically (`tl_app.atomic`: a temporary file beside it, fsynced, renamed over it)."""
    text = to_text(config).encode("utf-8")
    # 0o644: the model server may run as another user.
    atomic.write_atomic(os.path.abspath(path), lambda f: f.write(text), prefix=".tmp-models-config-", mode=0o644)


def _base_root(config, base_dir):
    """The directory the existing entries' base paths share (kept across rewrites), else the local one."""
    parents = {os.path.dirname(c.base_path.rstrip("/")) for c in config.model_config_list.config if c.base_path}
    return parents.pop() if len(parents) == 1 else os.path.abspath(base_dir)


def _merged(existing, base_dir, base_path):
    from tensorflow_serving.config import model_server_config_pb2

    root = base_path or _base_root(existing, base_dir)
    old = {c.name: c for c in existing.model_config_list.config}
    config = model_server_config_pb2.ModelServerConfig()
    for name in servable_models(base_dir):
        entry = config.model_config_list.config.add()
        if name in old:
            entry.CopyFrom(old[name])
        else:
            entry.name = name
            entry.model_version_policy.latest.num_versions = 1
        entry.base_path = os.path.join(root, name)
        entry.model_platform = "tensorflow"
    return config


def update(base_dir, base_path=None):
    """Rewrite `base_dir/models.config` for the model directories now under `base_dir`; returns the config.

    Args:
        base_dir: the export base (`saved_models`).
        base_path: the directory the server sees `base_dir` as (`/models` in the container); None keeps
            the one the file already names, or the absolute local directory for a new file.
    """
    from tensorflow_serving.config import model_server_config_pb2

    path = os.path.join(base_dir, CONFIG_FILE)
    with _locked(base_dir):
        existing = read(path) if os.path.isfile(path) else model_server_config_pb2.ModelServerConfig()
        config = _merged(existing, base_dir, base_path)
        write(path, config)
    return config


def set_label(base_dir, model, version, label):
    """Point `label` of `model` at `version` in `base_dir/models.config`; returns a line saying what changed.

    Args:
        base_dir: the export base.
        model: a model directory name under it.
        version: an existing version of that model.
        label: `[a-zA-Z0-9_]+` (e.g. `stable`, `canary`).
    """
    check_model_name(model)
    if not LABEL_PATTERN.match(label or ""):
        raise UserError(f"label {label!r}: TF Serving labels are letters, digits and '_' only (e.g. stable, canary).")
    versions = version_numbers(os.path.join(base_dir, model))
    if not versions:
        known = ", ".join(servable_models(base_dir)) or "none"
        raise UserError(f"no model '{model}' under {base_dir} (models there: {known}).")
    if version not in versions:
        raise UserError(f"{model} has no version {version} under {base_dir} (versions: "
                        f"{', '.join(map(str, versions))}).")
    from tensorflow_serving.config import model_server_config_pb2

    path = os.path.join(base_dir, CONFIG_FILE)
    with _locked(base_dir):
        existing = read(path) if os.path.isfile(path) else model_server_config_pb2.ModelServerConfig()
        config = _merged(existing, base_dir, None)
        entry = next(c for c in config.model_config_list.config if c.name == model)
        entry.version_labels[label] = version
        note = _serve_labelled_versions(entry, versions)
        write(path, config)
    return f"{path}: {model} label {label} -> version {version}{note}"


def _serve_labelled_versions(entry, versions):
    """Make the policy load every labelled version (TF Serving refuses labels on versions it does not load)."""
    policy = entry.model_version_policy
    labelled = set(entry.version_labels.values())
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return ""
    if which == "specific":
        loaded = set(policy.specific.versions)
    else:
        n = policy.latest.num_versions or 1
        loaded = set(versions[-n:])
    if labelled <= loaded:
        return ""
    wanted = sorted(loaded | labelled if which == "specific" else labelled | {versions[-1]})
    policy.specific.Clear()
    policy.specific.versions.extend(wanted)
    return f"; version policy is now specific {{{', '.join(map(str, wanted))}}} so that every labelled version loads"
