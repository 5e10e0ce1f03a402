"""No option silently ignored or replaced: which phase each field drives, clear errors, `auto` presets, saved runs."""
import dataclasses
import json

import pytest

from helpers import assert_one_line_error
from tl_app import registry
from tl_app.errors import UserError


def _recipe(name, **fields):
    cls = registry.get(name)
    return cls(dataclasses.replace(cls.default_config(), **fields))


# ---- which phase each field drives ------------------------------------------------------
def test_config_shows_the_phase_each_field_drives(cli):
    result = cli("config", "text_folder", "--set", "fine_tune_epochs=0")
    assert result.exit_code == 0, result.output
    assert ("phases: adapt (adapt_epochs=0: skipped), head (epochs=30), fine_tune (fine_tune_epochs=0: skipped)"
            in result.output)
    phase_of = {line.split()[0]: line.split()[-1] for line in result.output.splitlines()[2:]}
    assert phase_of["optimizer"] == phase_of["weight_decay"] == phase_of["warmup_fraction"] == "head"
    assert phase_of["fine_tune_optimizer"] == phase_of["fine_tune_weight_decay"] == "fine_tune"
    assert "head, fine_tune" in [line for line in result.output.splitlines() if line.split()[0] == "warmup_steps"][0]
    assert phase_of["seed"] == "42"  # no phase column: the whole run
    result = cli("config", "image_folder")
    assert [line for line in result.output.splitlines() if line.split()[0] == "optimizer"][0].endswith("head, fine_tune")


def test_the_text_fine_tune_phase_reads_its_own_fields():
    recipe = _recipe("text_folder", fine_tune_optimizer="sgd", fine_tune_clipnorm=2.0)
    phases = {p.name: p for p in recipe.phase_fields()}  # the text recipes also have `adapt` (masked LM)
    head, fine = phases["head"], phases["fine_tune"]
    assert head.options(recipe.config) == {}
    assert fine.options(recipe.config) == {"optimizer": "sgd", "weight_decay": 0.01, "lr_schedule": "linear",
                                           "warmup_fraction": 0.1, "clipnorm": 2.0}


def test_a_field_no_phase_reads_is_warned_naming_the_field_that_does(cli, workdir):
    from tl_app.phase_fields import unused_fields

    warnings, notes = unused_fields(_recipe("text_folder", fine_tune_epochs=0, fine_tune_optimizer="sgd"))
    assert warnings == ["fine_tune_optimizer='sgd' is used by no phase of this run: phase 'fine_tune' is skipped"
                        " (fine_tune_epochs=0); phase 'head' reads optimizer ('adam')."] and notes == []
    warnings, notes = unused_fields(_recipe("text_folder", epochs=0, optimizer="sgd"))
    assert warnings == ["optimizer='sgd' is used by no phase of this run: phase 'head' is skipped (epochs=0);"
                        " phase 'fine_tune' reads fine_tune_optimizer ('adamw')."]
    warnings, notes = unused_fields(_recipe("text_folder", weight_decay=0.05))
    assert warnings == [] and notes == ["weight_decay=0.05 drives phase 'head' only; phase 'fine_tune' reads"
                                        " fine_tune_weight_decay (0.01) (tl-app config shows which phase each field"
                                        " drives)."]
    warnings, _ = unused_fields(_recipe("text_folder", adapt_learning_rate=1e-3, adapt_data="notes.txt"))
    assert [w.split(":")[0] for w in warnings] == ["adapt_learning_rate=0.001 is used by no phase of this run",
                                                   "adapt_data='notes.txt' is used by no phase of this run"]
    assert "phase 'adapt' is skipped (adapt_epochs=0)" in warnings[0]
    warnings, _ = unused_fields(_recipe("image_folder", fine_tune_epochs=0, fine_tune_at=10, gradual_unfreeze=2))
    assert len(warnings) == 2 and "fine_tune_at=10 is used by no phase" in warnings[0]
    assert unused_fields(_recipe("image_folder", weight_decay=0.1)) == ([], [])  # both phases read it

    result = cli("run", "digits", "--epochs", "0", "--set", "optimizer=sgd", "--no-export")
    assert result.exit_code == 0, result.output
    assert "warning: optimizer='sgd' is used by no phase of this run: phase 'train' is skipped (epochs=0)." \
        in result.output


# ---- values that were silently replaced -------------------------------------------------
@pytest.mark.parametrize("recipe", ["text_folder", "image_folder"])
def test_fine_tune_learning_rate_zero_is_an_error(cli, workdir, recipe):
    assert_one_line_error(cli("run", recipe, "--data-dir", "nowhere", "--set", "fine_tune_learning_rate=0"),
                          "fine_tune_learning_rate=0.0: must be above 0")
    # A set rate is the rate: the image recipe used to replace a falsy one by learning_rate / 10.
    (fine,) = [p for p in _recipe(recipe, fine_tune_learning_rate=1e-4).phase_fields() if p.name == "fine_tune"]
    assert fine.settings["learning_rate"] == "fine_tune_learning_rate"


def test_empty_weights_is_an_error_not_auto(cli, workdir, tmp_path):
    from tl_app.image.backbones import get as get_backbone
    from tl_app.image.weights import resolve_weights

    with pytest.raises(UserError, match="weights=: empty; choose auto"):
        resolve_weights(" ", get_backbone("mobilenet_v2"), 1.0, 96)
    (tmp_path / "images" / "a").mkdir(parents=True)
    assert_one_line_error(cli("run", "image_folder", "--data-dir", str(tmp_path / "images"), "--set", "weights="),
                          "weights=: empty")


# ---- preset=auto ------------------------------------------------------------------------
def test_text_preset_auto_is_the_default_and_says_what_it_chose(monkeypatch, tmp_path):
    from tl_app.text import presets
    from tl_app.text.config import TextConfig

    assert TextConfig().preset == "auto" and registry.get("text_csv").default_config().preset == "auto"
    monkeypatch.setattr(presets, "kaggle_cached", lambda handle: False)
    monkeypatch.setattr(presets, "host_reachable", lambda host, timeout: True)
    online = presets.resolve_preset("auto")
    assert (online.preset, online.choice, online.default_pooling) == ("bert_base_en_uncased", "bert_base_en_uncased", "cls")
    assert online.description.startswith("preset=auto -> keras-hub BERT preset bert_base_en_uncased (downloaded from")

    monkeypatch.setattr(presets, "host_reachable", lambda host, timeout: False)
    offline_dir = tmp_path / "minilm"
    offline_dir.mkdir()
    monkeypatch.setattr(presets, "minilm_directory", lambda: str(offline_dir))
    offline = presets.resolve_preset("auto")
    assert (offline.preset, offline.choice, offline.default_pooling) == (str(offline_dir), "offline", "mean")
    assert offline.description.startswith("preset=auto, keras-hub's bert_base_en_uncased cannot be downloaded here"
                                          " -> offline asset 'minilm'")

    monkeypatch.setattr(presets, "minilm_directory", lambda: None)
    with pytest.raises(UserError, match="preset=auto: .*bert_base_en_uncased cannot be downloaded.*tl-app assets minilm"):
        presets.resolve_preset("auto")


# ---- the saved config repeats the run ----------------------------------------------------
def test_config_json_records_init_from_and_what_auto_resolved_to(cli, workdir, tmp_path, monkeypatch):
    from text_helpers import write_text_folder, write_tiny_bert_preset
    from tl_app.text import presets

    assert cli("run", "digits", "--epochs", "0", "--run-id", "base").exit_code == 0
    export = workdir / "saved_models" / "digits" / "1"
    result = cli("run", "digits", "--epochs", "0", "--init-from", "saved_models/digits/1", "--run-id", "seeded",
                 "--no-export")
    assert result.exit_code == 0, result.output
    saved = workdir / "runs" / "digits" / "seeded" / "config.json"
    assert json.loads(saved.read_text())["init_from"] == str(export)
    # Repeating it starts from the same export; a run continuing by --run-id takes its checkpoint instead.
    result = cli("run", "--config", str(saved), "--run-id", "again", "--no-export")
    assert result.exit_code == 0 and f"initial weights from the export {export}" in result.output, result.output
    assert json.loads((workdir / "runs" / "digits" / "again" / "config.json").read_text())["init_from"] == str(export)

    # preset=auto resolved to the offline encoder (here a tiny stand-in): recorded, and repeated by --config.
    monkeypatch.setattr(presets, "minilm_directory", lambda: write_tiny_bert_preset(tmp_path / "offline_bert"))
    texts = write_text_folder(tmp_path / "texts", n_per_class=12)
    result = cli("run", "text_folder", "--data-dir", texts, "--set", "sequence_length=16", "--set", "epochs=0",
                 "--set", "fine_tune_epochs=0", "--run-id", "auto", "--no-export")
    assert result.exit_code == 0, result.output
    assert "encoder: preset=auto, keras-hub's bert_base_en_uncased cannot be downloaded here" in result.output
    saved = workdir / "runs" / "text_folder" / "auto" / "config.json"
    config = json.loads(saved.read_text())
    assert config["preset"] == "auto" and config["resolved"]["preset"] == "offline"
    assert config["mixed_precision"] == "auto" and config["resolved"]["mixed_precision"] in ("float32", "bfloat16")
    shown = cli("config", "--config", str(saved))
    assert "preset=auto resolved to 'offline' in the run it records" in shown.output
    assert [line.split()[2] for line in shown.output.splitlines() if line.split()[:1] == ["preset"]] == ["'offline'"]
    shown = cli("config", "--config", str(saved), "--set", "preset=auto")
    assert "preset=auto resolved to" not in shown.output
