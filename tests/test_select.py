"""`tl-app select`, `base=auto`: bases ranked by probes on frozen features, the winner trained and recorded."""
import json
import os

import numpy as np
import pytest

from helpers import assert_one_line_error, write_two_colours

TINY = ["--set", "image_size=32", "--set", "weights=none", "--set", "batch_size=16"]
BASES = "mobilenet_v2,mobilenet_v3_small"


@pytest.fixture(scope="module")
def two_colours(tmp_path_factory):
    """train/ and test/ class folders of red and blue squares."""
    return write_two_colours(str(tmp_path_factory.mktemp("select") / "data"))


def test_select_ranks_bases_a_second_select_reuses_them_and_base_auto_trains_the_winner(workdir, cli, two_colours,
                                                                                          monkeypatch):
    import tl_app

    args = ["select", "image_folder", "--data-dir", two_colours, "--bases", BASES, *TINY]
    first = cli(*args, "--run-id", "one")
    assert first.exit_code == 0, first.output
    payload = json.loads((workdir / "runs" / "image_folder" / "select-one" / "selection.json").read_text())
    ranking = payload["ranking"]
    assert sorted(e["base"] for e in ranking) == sorted(BASES.split(","))
    assert payload["winner"] == ranking[0]["base"]
    accuracies = [e["probe"]["accuracy"] for e in ranking]
    assert accuracies == sorted(accuracies, reverse=True)
    for entry in ranking:
        assert 0 <= entry["probe"]["accuracy"] <= 1 and entry["probe"]["folds"] == 5
        assert np.isfinite(entry["logme"]) and entry["parameters"] > 0 and entry["latency_ms"] > 0
        assert not entry["features_reused"] and len(entry["feature_keys"]) == 2
        assert entry["examples"] == 30  # train and validation (carved from train/), not the 6 test images
    assert f"winner: {payload['winner']}" in first.output and "probe accuracy" in first.output
    assert ("within one fold spread" in first.output) == bool(payload["tied_with_winner"])

    second = cli(*args, "--run-id", "two")
    assert second.exit_code == 0, second.output
    again = json.loads((workdir / "runs" / "image_folder" / "select-two" / "selection.json").read_text())
    assert [e["base"] for e in again["ranking"]] == [e["base"] for e in ranking]
    for before, after in zip(ranking, again["ranking"]):
        assert after["features_reused"] and after["feature_keys"] == before["feature_keys"]
        assert after["probe"] == before["probe"] and after["logme"] == before["logme"]
    assert "(kept)" in second.output

    # base=auto: the same candidates and features, so the selection's figures are reused; the winner trains.
    from tl_app import api
    from tl_app.image.classification import ImageClassification

    monkeypatch.setattr(ImageClassification, "base_candidates", lambda self, spec: BASES.split(","))
    result = tl_app.run("image_folder", data_dir=two_colours, base="auto", image_size=32, weights="none",
                        batch_size=16, epochs=1, fine_tune_epochs=0, export=False, logdir="runs")
    config = json.loads(open(os.path.join(result.run_dir, "config.json")).read())
    third = max((workdir / "runs" / "image_folder").glob("select-*/selection.json"), key=os.path.getmtime)
    assert json.loads(third.read_text())["winner"] == payload["winner"]
    assert config["base"] == "auto" and config["resolved"]["base"] == payload["winner"]
    assert config["selection"]["selection"] == str(third.relative_to(workdir))
    assert [b for b, _ in config["selection"]["ranking"]] == [e["base"] for e in ranking]
    loaded = api.load_config_file(os.path.join(result.run_dir, "config.json"))
    assert api.resolve_config(api.recipe_class(None, loaded), loaded).base == payload["winner"]  # --config repeats it


def test_select_bad_input_is_one_line(workdir, cli, two_colours, tmp_path):
    unknown = cli("select", "image_folder", "--data-dir", two_colours, "--bases", "mobilenet_v2,efficientnet_lite9")
    assert_one_line_error(unknown, "efficientnet_lite9", "efficientnet_lite")
    mlp = cli("select", "digits")
    assert_one_line_error(mlp, "digits", "no pretrained base")
    too_big = cli("select", "image_folder", "--data-dir", two_colours, "--bases", "mobilenet_v2", *TINY,
                  "--max-params", "1000")
    assert_one_line_error(too_big, "--max-params 1,000")
    export = tmp_path / "export"
    export.mkdir()
    init = cli("run", "image_folder", "--data-dir", two_colours, "--set", "base=auto", "--init-from", str(export))
    assert_one_line_error(init, "base=auto", "--init-from")


def test_probe_needs_every_class_in_every_fold():
    from tl_app.errors import UserError
    from tl_app.select.probe import check_folds

    check_folds(np.repeat([0, 1], 5), ["a", "b"])
    with pytest.raises(UserError, match="'b' has 3"):
        check_folds(np.array([0] * 6 + [1] * 3), ["a", "b"])


def test_bases_the_probe_cannot_tell_from_the_winner_are_named(tmp_path):
    from types import SimpleNamespace

    from tl_app.select.choose import tie_line
    from tl_app.select.selection import BaseScore, write_selection

    def scored(base, accuracy, spread):
        return BaseScore(base, probe={"accuracy": accuracy, "accuracy_std": spread}, logme=0.4)

    # The Fashion-MNIST selection's figures (docs/select.md): Lite0 is within MobileNetV2's spread, Lite2 just out.
    scores = [scored("efficientnet_lite2", 0.8683, 0.0040), scored("xception", 0.8418, 0.0043),
              scored("mobilenet_v2", 0.8733, 0.0048), scored("efficientnet_lite0", 0.8685, 0.0064),
              BaseScore("vit_b16", dropped="no weights here")]
    recipe = SimpleNamespace(name="image_folder", config=SimpleNamespace(seed=42))
    payload = write_selection(str(tmp_path), recipe, [s.base for s in scores], scores, {}, 1.0)
    assert payload["winner"] == "mobilenet_v2" and payload["tied_with_winner"] == ["efficientnet_lite0"]
    assert json.loads((tmp_path / "selection.json").read_text())["tied_with_winner"] == ["efficientnet_lite0"]
    line = tie_line(payload)
    assert line.startswith("within one fold spread of mobilenet_v2: efficientnet_lite0 (")

    # Equal probes with no spread (both perfect) are tied; a clear winner names none.
    assert tie_line(write_selection(str(tmp_path), recipe, ["a", "b"], [scored("a", 1.0, 0.0), scored("b", 1.0, 0.0)],
                                    {}, 1.0)) is not None
    clear = write_selection(str(tmp_path), recipe, ["a", "b"], [scored("a", 0.95, 0.01), scored("b", 0.80, 0.01)], {}, 1.0)
    assert clear["tied_with_winner"] == [] and tie_line(clear) is None
