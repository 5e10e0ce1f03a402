"""Config files: `tl-app run RECIPE --config run.yaml` (YAML or JSON), the same keys as `--set`.

A file holds config fields with typed values (`epochs: 5`, `weights: offline`)
and may name its recipe (`recipe: digits`). The `config.json` a run saves
beside its logs and export is such a file, so

    tl-app run --config runs/digits/<run-id>/config.json

repeats that run: it also records the export the run started from
(`init_from:`, used as `--init-from` for a new run unless the command names
one) and what its `auto` fields resolved to (`resolved: {weights: offline}`,
used where the file still says `auto`). Precedence, lowest first: the
recipe's defaults, the file, `--set`, then the dedicated flags (`--epochs`,
`--seed`, ...).

Every mistake names the file, the line (where the parser gives one) and the key.

Examples:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "run.yaml")
    >>> _ = open(path, "w").write("recipe: digits\\nepochs: 3\\nlearning_rate: 3e-4\\n")
    >>> loaded = load(path)
    >>> loaded.recipe, loaded.values, loaded.where("epochs")
    ('digits', {'epochs': 3, 'learning_rate': '3e-4'}, 'run.yaml, line 2')
"""
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Optional

from tl_app.errors import UserError

# Keys a run writes into its config.json besides the config fields; accepted in any config file.
RECIPE_KEY = "recipe"
RECIPE_FILE_KEY = "recipe_file"  # `path.py:Class` of a recipe loaded from a file
INIT_FROM_KEY = "init_from"  # the export `--init-from` started the run from
RESOLVED_KEY = "resolved"  # what `auto` fields resolved to, e.g. {"weights": "offline"}
# distribution: how it trained (informational)
SELECTION_KEY = "selection"  # base=auto: which selection chose the base, and its ranking
RECORD_KEYS = (RECIPE_KEY, RECIPE_FILE_KEY, "distribution", INIT_FROM_KEY, RESOLVED_KEY, SELECTION_KEY)
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@dataclass
class ConfigFile:
    """A parsed config file.

    Args:
        path: the file.
        values: config field -> value, as the file gives it (checked later against the recipe's fields).
        lines: key -> its 1-based line in the file.
        recipe: the recipe the file names (`recipe:`), or None.
        recipe_file: the recipe file it names (`recipe_file:`), or None.
        init_from: the export the recorded run started from (`init_from:`), or None.
        resolved: what the recorded run's `auto` fields resolved to (`resolved:`), e.g. {"weights": "offline"}.
    """

    path: str
    values: Dict[str, object]
    lines: Dict[str, int] = field(default_factory=dict)
    recipe: Optional[str] = None
    recipe_file: Optional[str] = None
    init_from: Optional[str] = None
    resolved: Dict[str, object] = field(default_factory=dict)

    def repeated_values(self):
        """`{field: value}` that repeat the recorded run: what its `auto` fields resolved to, where the file
        still says `auto` (a field edited to another value keeps that value)."""
        return {key: value for key, value in self.resolved.items() if self.values.get(key) == "auto"}

    def where(self, key):
        """`file, line N` of `key` (or just the file when the line is unknown), for messages."""
        name = os.path.basename(self.path)
        return f"{name}, line {self.lines[key]}" if key in self.lines else name


def _read(path):
    kind = SUFFIXES.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise UserError(f"--config {path}: expected a .yaml, .yml or .json file.")
    if not os.path.isfile(path):
        raise UserError(f"--config {path}: no such file.")
    try:
        with open(path, encoding="utf-8-sig") as f:
            return kind, f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--config {path}: cannot be read ({exc}).") from None


def _parse_json(path, text):
    def no_duplicates(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise UserError(f"{path}: key '{key}' appears twice; keep one.", key=key)
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno}).") from None
    lines = {}
    if isinstance(data, dict):
        for key in data:  # the line of the key's first appearance at the start of a line
            match = re.search(r'^\s*"' + re.escape(key) + r'"\s*:', text, re.MULTILINE)
            if match:
                lines[key] = text.count("\n", 0, match.start()) + 1
    return data, lines


def _parse_yaml(path, text):
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}{where}: not valid YAML ({problem}).") from None
    lines = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            key = key_node.value
            if key in lines:
                raise UserError(f"{path}, line {key_node.start_mark.line + 1}: key '{key}' appears twice"
                                f" (first on line {lines[key]}); keep one.", key=key)
            lines[key] = key_node.start_mark.line + 1
    return data, lines


def load(path):
    """Read and parse the config file at `path` (YAML or JSON, by its suffix); see the module docstring."""
    kind, text = _read(path)
    data, lines = (_parse_json if kind == "json" else _parse_yaml)(path, text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config fields (key: value), not a {type(data).__name__}.")
    values = {str(k): v for k, v in data.items() if k not in RECORD_KEYS}
    config = ConfigFile(path=path, values=values, lines=lines)
    for key in (RECIPE_KEY, RECIPE_FILE_KEY, INIT_FROM_KEY):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise UserError(f"{config.where(key)}: {key} must be a string, not {value!r}.", key=key)
        setattr(config, key, value)
    resolved = data.get(RESOLVED_KEY) or {}
    if not isinstance(resolved, dict):
        raise UserError(f"{config.where(RESOLVED_KEY)}: {RESOLVED_KEY} must be a mapping of fields to values"
                        f" (e.g. weights: offline), not {resolved!r}.", key=RESOLVED_KEY)
    config.resolved = {str(k): v for k, v in resolved.items()}
    return config
