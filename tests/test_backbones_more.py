"""The other half of the registered image bases through `test_backbones.check_base` (build, train, export,
answer): a second file, so the two halves run on separate test workers."""
import pytest

from test_backbones import check_base
from tl_app.image.backbones import all_backbones

BASES = sorted(all_backbones())[1::2]


@pytest.mark.parametrize("name", BASES)
def test_every_base_builds_trains_exports_and_its_export_answers_as_the_model(name, tmp_path, feature_store_dir):
    check_base(name, tmp_path)


def test_a_non_default_base_goes_through_serving_check_tflite_evaluate_reexport_and_init_from(cli, workdir, tmp_path):
    """EfficientNet-Lite0 (a cloned keras-hub graph with TF padding) through everything downstream of training."""
    import json

    from test_images import write_color_tree

    data = write_color_tree(str(tmp_path / "data"), per_class=8)
    common = ["--data-dir", data, "--set", "base=efficientnet_lite0", "--set", "weights=none", "--set", "image_size=32",
              "--batch-size", "8", "--seed", "3"]
    first = cli("run", "image_folder", *common, "--epochs", "1", "--set", "fine_tune_epochs=1", "--set", "tflite=int8",
                "--run-id", "lite")  # the serving check is on: a fresh `tl-app serve` answers as the model
    assert first.exit_code == 0, first.output
    export = workdir / "saved_models" / "image_folder" / "1"
    evaluation = json.loads((workdir / "saved_models" / "image_folder-tflite" / "1" / "evaluation.json").read_text())
    assert [row["mode"] for row in evaluation["rows"]] == ["savedmodel", "int8"]
    assert json.loads((export / "assets.extra" / "config.json").read_text())["base"] == "efficientnet_lite0"
    run_metrics = json.loads((workdir / "runs" / "image_folder" / "lite" / "metrics.json").read_text())

    evaluated = cli("evaluate", str(export), "--output-dir", str(tmp_path / "eval"))
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["accuracy"] == run_metrics["accuracy"]
    again = cli("export", str(workdir / "runs" / "image_folder" / "lite"), "--no-serving-check")
    assert again.exit_code == 0 and (workdir / "saved_models" / "image_folder" / "2").is_dir(), again.output

    # --init-from: the export's base is this run's base, or one line says which to set.
    wrong = cli("run", "image_folder", "--data-dir", data, "--set", "weights=none", "--set", "image_size=32",
                "--init-from", str(export), "--no-export")
    assert wrong.exit_code == 2 and len(wrong.output.strip().splitlines()) == 1
    assert "trained with base=efficientnet_lite0" in wrong.output and "--set base=efficientnet_lite0" in wrong.output
    seeded = cli("run", "image_folder", *common, "--epochs", "0", "--set", "fine_tune_epochs=0", "--init-from",
                 str(export), "--no-export", "--run-id", "seeded")
    assert seeded.exit_code == 0, seeded.output
    metrics = json.loads((workdir / "runs" / "image_folder" / "seeded" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(run_metrics["accuracy"])
