"""`--config FILE` (YAML or JSON): precedence, the saved config.json round trip, and every bad input."""
import json

import pytest

from helpers import assert_one_line_error as _one_line_error


def test_saved_config_repeats_a_digits_run_exactly(cli, workdir):
    first = cli("run", "digits", "--epochs", "4", "--seed", "11", "--set", "learning_rate=0.002", "--run-id", "a")
    assert first.exit_code == 0, first.output
    saved = workdir / "runs" / "digits" / "a" / "config.json"
    again = cli("run", "--config", str(saved), "--run-id", "b", "--no-export")
    assert again.exit_code == 0, again.output
    a = json.loads(saved.read_text())
    b = json.loads((workdir / "runs" / "digits" / "b" / "config.json").read_text())
    # What the first run's `auto` fields resolved to (mixed_precision) is what the repeat runs with.
    assert a["mixed_precision"] == "auto" and b["mixed_precision"] == a["resolved"]["mixed_precision"]
    resolved = a.pop("resolved")
    assert {**a, **resolved} == {k: v for k, v in b.items() if k != "resolved"}
    metrics = [json.loads((workdir / "runs" / "digits" / r / "metrics.json").read_text()) for r in ("a", "b")]
    assert metrics[0]["accuracy"] == metrics[1]["accuracy"]
    # The export's copy is a valid --config too.
    export_config = workdir / "saved_models" / "digits" / "1" / "assets.extra" / "config.json"
    shown = cli("config", "--config", str(export_config))
    assert shown.exit_code == 0 and any(line.split()[:3] == ["learning_rate", "float", "0.002"]
                                        for line in shown.output.splitlines()), shown.output


def test_yaml_file_then_set_then_flags(cli, workdir):
    (workdir / "run.yaml").write_text("recipe: digits\nepochs: 6\nlearning_rate: 3e-3\nhidden_units: 64\n"
                                      "clipnorm: null\nrestore_best_weights: false\n")
    shown = cli("config", "--config", "run.yaml", "--set", "hidden_units=16")
    rows = {line.split()[0]: line.split()[2] for line in shown.output.splitlines()[1:]}
    assert (rows["epochs"], rows["learning_rate"], rows["hidden_units"], rows["restore_best_weights"]) == \
        ("6", "0.003", "16", "False")
    result = cli("run", "--config", "run.yaml", "--epochs", "2", "--no-export", "--run-id", "y")
    assert result.exit_code == 0, result.output
    saved = json.loads((workdir / "runs" / "digits" / "y" / "config.json").read_text())
    assert (saved["epochs"], saved["learning_rate"], saved["hidden_units"]) == (2, 0.003, 64)


@pytest.mark.parametrize("name, text, fragments", [
    ("bad.yaml", "epochs: 3\nlearning_rate: [0.1\n", ["bad.yaml, line 3", "not valid YAML"]),
    ("bad.json", '{\n  "epochs": 3,\n  "seed": 1,\n}\n', ["bad.json, line 4", "not valid JSON"]),
    ("unknown.yaml", "epochs: 3\nepocs: 4\n", ["unknown.yaml, line 2", "'epocs' is not a config field of digits",
                                             "'epochs'"]),
    ("type.yaml", "epochs: 3\nbatch_size: big\n", ["type.yaml, line 2", "batch_size", "'big' is not a valid int"]),
    ("type.json", '{"epochs": 3,\n "deterministic": "perhaps"}\n', ["type.json, line 2", "deterministic",
                                                                    "not a valid bool"]),
    ("float.yaml", "epochs: 2.5\n", ["float.yaml, line 1", "epochs: 2.5 is not a valid int"]),
    ("range.yaml", "epochs: 3\n\ndropout: 1.5\n", ["range.yaml, line 3", "dropout=1.5: must be in [0, 1)"]),
    ("twice.yaml", "epochs: 3\nepochs: 4\n", ["twice.yaml, line 2", "'epochs' appears twice"]),
    ("list.yaml", "- epochs\n", ["list.yaml", "expected a mapping"]),
    ("other.yaml", "recipe: mnist\nepochs: 1\n", ["other.yaml is a config of recipe 'mnist', not 'digits'"]),
    ("run.toml", "epochs = 1\n", ["expected a .yaml, .yml or .json file"]),
])
def test_bad_config_files_name_file_line_and_key(cli, workdir, name, text, fragments):
    (workdir / name).write_text(text)
    _one_line_error(cli("run", "digits", "--config", name), *fragments)
    assert not (workdir / "runs").exists()


def test_config_file_problems_that_are_not_in_the_file(cli, workdir):
    _one_line_error(cli("run", "digits", "--config", "missing.yaml"), "--config missing.yaml: no such file")
    (workdir / "nameless.yaml").write_text("epochs: 1\n")
    _one_line_error(cli("run", "--config", "nameless.yaml"), "name a recipe", "nameless.yaml names none")
    (workdir / "range.yaml").write_text("dropout: 0.5\n")
    # --set wins over the file, so a range error from --set names --set, not the file.
    line = _one_line_error(cli("run", "digits", "--config", "range.yaml", "--set", "dropout=2"), "dropout=2.0")
    assert "range.yaml" not in line
