"""`tl-app tune`: KerasTuner picks values, each trial is a run of the recipe's pipeline; killed tunes resume."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from helpers import assert_one_line_error, write_two_colours
from tl_app.select.best_trial import choose, standard_error


@pytest.fixture(autouse=True)
def _op_determinism_off_after():
    """A tune's trials turn TensorFlow's op determinism on, process-wide: the tests after these run without it."""
    yield
    from tl_app.engine.strategies import set_op_determinism

    set_op_determinism(False)


def test_tune_writes_best_yaml_trials_and_hparams_and_run_repeats_the_best(workdir, cli):
    from tl_app import api

    result = cli("tune", "digits", "--trials", "2", "--fine-tune-trials", "0", "--set", "epochs=2",
                 "--run-id", "one", "--tuner", "random")
    assert result.exit_code == 0, result.output
    tune_dir = workdir / "runs" / "digits" / "tune-one"
    rows = list(csv.DictReader(open(tune_dir / "trials.csv")))
    assert [r["trial"] for r in rows] == ["0", "1"] and {r["status"] for r in rows} == {"COMPLETED"}
    saved = json.loads((tune_dir / "result.json").read_text())
    best, choice = saved["best"], saved["choice"]
    # best.yaml takes the best trial, unless it beats the run's own configuration (trial 0, below) by no more than
    # one standard error of the validation figure: then the run's own is kept.
    validation = sum(1 for _ in api.resolved_recipe("digits").load_data().validation)
    scores = {r["trial"]: float(r["val_accuracy"]) for r in rows}
    top = max(scores, key=scores.get)
    error = standard_error(scores[top], validation)
    assert (choice["validation_examples"], choice["best_trial"]) == (validation, f"head {top}")
    assert choice["standard_error"] == pytest.approx(error, abs=1e-5)
    assert choice["tied_with_best"] == [f"head {t}" for t in scores if t != top and scores[top] - scores[t] <= error]
    assert choice["kept_own"] == (top != "0" and scores[top] - scores["0"] <= error)
    assert best["trial"] == ("0" if choice["kept_own"] else top)
    assert best["score"] == pytest.approx(scores[best["trial"]])
    assert f"validation accuracy {best['score']:.4f}" in result.output
    # The first trial is what `tl-app run digits --set epochs=2` trains: the search never ends below it.
    own = api.resolved_recipe("digits").config
    first = json.loads((tune_dir / "trials" / "digits" / "head_0" / "trial.json").read_text())["values"]
    assert first.pop("deterministic") is True  # tune's own, fixed in every trial: op determinism
    assert first == {k: ("none" if getattr(own, k) is None else getattr(own, k)) for k in first}
    assert set(first) == {"class_weight", "dropout", "hidden_units", "label_smoothing", "learning_rate",
                          "weight_decay"}
    assert "the head search starts from the run's own values" in result.output
    for row in rows:  # each trial: a run of its own with its values, validation scalars and an HParams record
        run_dir = tune_dir / "trials" / "digits" / f"head_{row['trial']}"
        config = json.loads((run_dir / "config.json").read_text())
        assert config["hidden_units"] == int(row["hidden_units"]) and config["epochs"] == 2
        assert list(run_dir.glob("events.out.tfevents.*")) and list((run_dir / "validation").glob("events.*"))
        assert not (run_dir / "metrics.json").exists()  # no test split read
    loaded = api.load_config_file(str(tune_dir / "best.yaml"))
    config = api.resolve_config(api.recipe_class(None, loaded), loaded)
    assert config.epochs == 2 and config.hidden_units == best["values"]["hidden_units"]
    assert config.learning_rate == pytest.approx(best["values"]["learning_rate"])
    # Trials run with op determinism, and best.yaml says so: `tl-app run --config best.yaml` repeats the best
    # trial's validation figure exactly, epoch by epoch.
    from tl_app.evaluate.summaries import read_epoch_scalars

    assert config.deterministic is True and {r["deterministic"] for r in rows} == {"True"}
    repeat = cli("run", "--config", str(tune_dir / "best.yaml"), "--run-id", "repeat", "--no-export")
    assert repeat.exit_code == 0, repeat.output
    trial_curve = read_epoch_scalars(str(tune_dir / "trials" / "digits" / f"head_{best['trial']}"))
    run_curve = read_epoch_scalars(str(workdir / "runs" / "digits" / "repeat"))
    assert run_curve["validation/accuracy"] == trial_curve["validation/accuracy"]
    assert run_curve["validation/accuracy"][1] == pytest.approx(best["score"], abs=1e-5)
    # Resuming it without op determinism is another search: refused, saying so.
    other = cli("tune", "digits", "--trials", "2", "--fine-tune-trials", "0", "--set", "epochs=2",
                "--run-id", "one", "--tuner", "random", "--resume", "--no-deterministic")
    assert_one_line_error(other, "--resume", "deterministic: saved true, now false")
    # A tuning that an older tl_app saved (no search format: its fine-tuning search lacked the head's epochs)
    # is not resumed with this one's searches: one line, before any trial, and nothing in it changes.
    search_file = tune_dir / "search.json"
    older = {k: v for k, v in json.loads(search_file.read_text()).items() if k != "format"}
    search_file.write_text(json.dumps(older))
    before = sorted(p.name for p in tune_dir.iterdir())
    resumed = cli("tune", "digits", "--trials", "2", "--fine-tune-trials", "0", "--set", "epochs=2",
                  "--run-id", "one", "--tuner", "random", "--resume")
    assert_one_line_error(resumed, "--resume", "search format 1, now 3", "searches the head's epochs",
                          "3: trials run with op determinism", "without --resume")
    assert sorted(p.name for p in tune_dir.iterdir()) == before and json.loads(search_file.read_text()) == older


def test_resume_refuses_a_tuning_saved_by_a_newer_tl_app(tmp_path):
    # A tuning saved by a later tl_app (format 3) is refused too, naming what this one cannot know.
    from tl_app.errors import UserError
    from tl_app.select import tuning

    (tmp_path / tuning.SEARCH_FILE).write_text(json.dumps({"format": tuning.SEARCH_FORMAT + 1, "space": {}}))
    with pytest.raises(UserError, match=rf"search format {tuning.SEARCH_FORMAT + 1}, now {tuning.SEARCH_FORMAT}; "
                                        rf"{tuning.SEARCH_FORMAT + 1}: unknown to this tl_app"):
        tuning._check_same_search(str(tmp_path), {"format": tuning.SEARCH_FORMAT, "space": {}})


def test_search_file_and_bad_input_are_one_line(workdir, cli):
    search = workdir / "search.yaml"
    search.write_text("learning_rate: {type: Float, min_value: 1.0e-3, max_value: 1.0e-2, sampling: log}\n"
                      "dropout: {type: Choice, values: [0.1, 1.5]}\n")
    out_of_range = cli("tune", "digits", "--search", str(search))
    assert_one_line_error(out_of_range, "search.yaml, line 2", "dropout=1.5")
    search.write_text("learning_rate: 0.01\nunits: {type: Int, min_value: 8, max_value: 64}\n")
    unknown = cli("tune", "digits", "--search", str(search))
    assert_one_line_error(unknown, "search.yaml, line 2", "units")
    search.write_text("learning_rate: {type: Uniform, min_value: 0.1, max_value: 0.2}\n")
    assert_one_line_error(cli("tune", "digits", "--search", str(search)), "line 1", "Float, Int, Choice, Boolean")
    assert_one_line_error(cli("tune", "digits", "--trials", "0"), "--trials 0")
    assert_one_line_error(cli("tune", "digits", "--budget-minutes", "0"), "--budget-minutes 0")
    assert_one_line_error(cli("tune", "digits", "--resume"), "--resume", "no tuning")
    assert not (workdir / "runs" / "digits").exists() or not list((workdir / "runs" / "digits").glob("tune-*"))


def test_sigkill_during_a_trial_then_resume_finishes_the_planned_trials_without_repeating(workdir):
    exe = os.path.join(os.path.dirname(sys.executable), "tl-app")
    args = [exe, "tune", "digits", "--trials", "3", "--fine-tune-trials", "0", "--tuner", "random",
            "--set", "epochs=3", "--run-id", "k"]
    trials = workdir / "runs" / "digits" / "tune-k" / "trials" / "digits"
    process = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (trials / "head_1" / "config.json").exists():  # the second trial has started
            assert process.poll() is None and time.monotonic() < deadline, "tune ended before its second trial"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    first = (trials / "head_0" / "trial.json").stat().st_mtime_ns
    assert not (trials / "head_2").exists()

    resumed = subprocess.run(args + ["--resume"], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (trials / "head_0" / "trial.json").stat().st_mtime_ns == first  # the finished trial was not run again
    oracle_trials = sorted(p.name for p in (workdir / "runs" / "digits" / "tune-k" / "head").glob("trial_*"))
    assert oracle_trials == ["trial_0", "trial_1", "trial_2"]
    rows = list(csv.DictReader(open(workdir / "runs" / "digits" / "tune-k" / "trials.csv")))
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    values = [tuple(sorted(yaml.safe_load(json.dumps(json.loads((trials / f"head_{t}" / "trial.json").read_text())
                                                      ["values"])).items())) for t in range(3)]
    assert len(set(values)) == 3  # three different trials, none repeated


def test_fine_tuning_search_searches_the_head_epochs_again_and_images_are_decoded_once(workdir, monkeypatch):
    import tl_app
    from tl_app.image import data as image_data

    write_two_colours(str(workdir / "squares"), train=12)
    search = workdir / "search.yaml"
    search.write_text("epochs: {type: Choice, values: [1, 2]}\n"
                      "learning_rate: {type: Float, min_value: 1.0e-3, max_value: 1.0e-2, sampling: log}\n"
                      "fine_tune_learning_rate: {type: Float, min_value: 1.0e-5, max_value: 1.0e-4, sampling: log}\n"
                      "fine_tune_epochs: 1\n")
    decoded = []
    real = image_data.load_image_files
    monkeypatch.setattr(image_data, "load_image_files", lambda files, *a, **k: decoded.append(len(files)) or real(
        files, *a, **k))
    result = tl_app.tune("image_folder", trials=1, fine_tune_trials=1, tuner="random", search=str(search),
                         run_id="ft", data_dir=str(workdir / "squares"), image_size=32, weights="none", batch_size=8,
                         epochs=2, deterministic=False)

    tune_dir = workdir / "runs" / "image_folder" / "tune-ft"
    oracle = json.loads((tune_dir / "fine_tune" / "oracle.json").read_text())
    assert "epochs" in {hp["config"]["name"] for hp in oracle["hyperparameters"]["space"]}
    rows = list(csv.DictReader(open(tune_dir / "trials.csv")))
    assert [r["stage"] for r in rows] == ["head", "fine_tune"]
    for row in rows[1:]:  # each fine-tuning trial trained the head for the epochs its tuner chose, then fine-tuned
        config = json.loads((tune_dir / "trials" / "image_folder" / f"fine_tune_{row['trial']}" / "config.json")
                            .read_text())
        assert config["epochs"] == int(row["epochs"]) in (1, 2) and config["fine_tune_epochs"] == 1
    assert result["best"]["values"]["epochs"] in (1, 2)
    # Each search starts from the run's own values: the head's epochs and learning rate as configured, then
    # fine-tuning at a tenth of the best head's learning rate (the image recipe's fine_tune_learning_rate=None).
    assert (float(rows[0]["learning_rate"]), int(rows[0]["epochs"])) == (1e-3, 2)
    assert float(rows[1]["fine_tune_learning_rate"]) == pytest.approx(float(rows[0]["learning_rate"]) / 10)
    assert int(rows[1]["epochs"]) == 2
    assert len(decoded) == 3  # train, validation, test: decoded by the head trial, reused by the fine-tuning one
    # The best head was the run's own (the only head trial), so no separate `own` trial: the fine-tuning start is it.
    # deterministic=False leaves each trial the config's own setting (off by default): no op determinism.
    assert config["deterministic"] is False and "deterministic" not in result["best"]["values"]
    assert json.loads((tune_dir / "search.json").read_text())["deterministic"] is False


def test_the_runs_own_configuration_is_a_fine_tuning_trial_when_the_best_head_is_another(workdir, monkeypatch):
    import tl_app
    from tl_app.select import tuning

    write_two_colours(str(workdir / "squares"), train=12)
    search = workdir / "search.yaml"  # the run's own learning rate (1e-3) is outside the head space
    search.write_text("learning_rate: {type: Choice, values: [0.01, 0.02]}\n"
                      "fine_tune_learning_rate: {type: Choice, values: [1.0e-5, 2.0e-5]}\n"
                      "fine_tune_epochs: 1\n")
    result = tl_app.tune("image_folder", trials=1, fine_tune_trials=1, tuner="random", search=str(search),
                         run_id="own", data_dir=str(workdir / "squares"), image_size=32, weights="none",
                         batch_size=8, epochs=1)
    tune_dir = workdir / "runs" / "image_folder" / "tune-own"
    rows = list(csv.DictReader(open(tune_dir / "trials.csv")))
    assert [(r["stage"], r["trial"]) for r in rows] == [("head", "0"), ("fine_tune", "own"), ("fine_tune", "0")]
    assert float(rows[0]["learning_rate"]) in (0.01, 0.02)
    # `own` trains what `tl-app run` would: the configured head learning rate, fine-tuning at a tenth of it.
    config = json.loads((tune_dir / "trials" / "image_folder" / "fine_tune_own" / "config.json").read_text())
    assert (config["learning_rate"], config["fine_tune_epochs"], config["deterministic"]) == (1e-3, 1, True)
    assert float(rows[1]["fine_tune_learning_rate"]) == pytest.approx(1e-4)
    scores = {(r["stage"], r["trial"]): float(r["val_accuracy"]) for r in rows}
    top = max(scores.values())
    # `own` is kept unless the best trial beats it by more than one standard error of the validation figure.
    kept_own = top - scores["fine_tune", "own"] <= result["choice"]["standard_error"]
    assert result["choice"]["kept_own"] == (kept_own and scores["fine_tune", "own"] < top)
    assert result["best"]["score"] == pytest.approx(scores["fine_tune", "own"] if kept_own else top)
    assert (result["best"]["trial"] == "own") or not kept_own
    # Resumed, it is read back, not trained again.
    before = (tune_dir / "trials" / "image_folder" / "fine_tune_own" / "trial.json").stat().st_mtime_ns
    tl_app.tune("image_folder", trials=1, fine_tune_trials=1, tuner="random", search=str(search), run_id="own",
                resume=True, data_dir=str(workdir / "squares"), image_size=32, weights="none", batch_size=8, epochs=1)
    assert (tune_dir / "trials" / "image_folder" / "fine_tune_own" / "trial.json").stat().st_mtime_ns == before
    # The budget judges the fine-tuning search by `own` too: an `own` that took longer than the time left
    # leaves no search trial, and the tune ends on the trials it has.
    real = tuning.run_trial
    monkeypatch.setattr(tuning, "run_trial", lambda recipe, d, run_id, *a: (
        lambda r: {**r, "seconds": 1e6} if run_id.endswith("_own") else r)(real(recipe, d, run_id, *a)))
    budgeted = tl_app.tune("image_folder", trials=1, fine_tune_trials=1, tuner="random", search=str(search),
                           run_id="budget", budget_minutes=60, data_dir=str(workdir / "squares"), image_size=32,
                           weights="none", batch_size=8, epochs=1)
    rows = list(csv.DictReader(open(workdir / "runs" / "image_folder" / "tune-budget" / "trials.csv")))
    assert [(r["stage"], r["trial"]) for r in rows] == [("head", "0"), ("fine_tune", "own")]
    assert budgeted["best"]["score"] == pytest.approx(max(float(r["val_accuracy"]) for r in rows))
    # best.yaml keeps the run's own configuration when the best trial beats it by no more than one standard error
    # (2 validation images: 0.19 at 2 of 2), and takes the best when it beats it by more. Every trial but `own`
    # reports 1.0 here; the best is the fine-tuning trial (fine-tuning wins a tie with the head alone).
    for run_id, own_score, kept_own in (("close", 0.9, True), ("far", 0.5, False)):
        monkeypatch.setattr(tuning, "run_trial", lambda recipe, d, run_id, *a, own_score=own_score: (
            lambda r: {**r, "val_accuracy": own_score if run_id.endswith("_own") else 1.0})(real(recipe, d, run_id, *a)))
        chosen = tl_app.tune("image_folder", trials=1, fine_tune_trials=1, tuner="random", search=str(search),
                             run_id=run_id, data_dir=str(workdir / "squares"), image_size=32, weights="none",
                             batch_size=8, epochs=1)
        choice = chosen["choice"]
        assert (choice["validation_examples"], choice["best_trial"], choice["best_score"]) == (2, "fine_tune 0", 1.0)
        assert choice["kept_own"] is kept_own and ("fine_tune own" in choice["tied_with_best"]) is kept_own
        best_yaml = yaml.safe_load(open(chosen["best_yaml"]))
        assert chosen["best"]["trial"] == ("own" if kept_own else "0")
        assert (best_yaml["learning_rate"] == 1e-3) is kept_own  # the run's own; the searched ones are 0.01, 0.02
        assert ("the run's own configuration, kept" in open(chosen["best_yaml"]).readline()) is kept_own


def test_best_yaml_keeps_the_runs_own_configuration_unless_the_best_beats_it_by_more_than_one_standard_error():
    # BBC News (stop 40): 112 validation texts, the best head at 110, the run's own configuration at 109.
    own = {"stage": "fine_tune", "trial": "own", "score": 109 / 112}
    head = {"stage": "head", "trial": "01", "score": 110 / 112}
    other = {"stage": "head", "trial": "02", "score": 100 / 112}
    kept, report = choose(head, [head, own, other], [own], 112)
    assert kept is own and report["kept_own"] and report["tied_with_best"] == ["fine_tune own"]
    assert report["best_trial"] == "head 01" and report["standard_error"] == pytest.approx(0.0169, abs=1e-4)
    # The same margin on 5,000 examples is a finding: the best is taken.
    kept, report = choose(head, [head, own, other], [own], 5000)
    assert kept is head and not report["kept_own"] and report["tied_with_best"] == []
    # No trial trained the run's own configuration: the best is taken, ties only reported.
    kept, report = choose(head, [head, own], [], 112)
    assert kept is head and report["tied_with_best"] == ["fine_tune own"]
    # The run's own is the best: nothing to keep instead, the others within reach only reported.
    first = {**own, "score": 111 / 112}
    kept, report = choose(first, [head, first], [first], 112)
    assert kept is first and not report["kept_own"] and report["tied_with_best"] == ["head 01"]
