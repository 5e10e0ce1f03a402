"""Paths from the command line cannot escape: run ids are names, runs and exports stay apart, odd version names."""
import os

import pytest

from helpers import assert_one_line_error


@pytest.mark.parametrize("run_id", ["../escaped", "a/b", "/tmp/absolute", "..", ".", "a\\b", " "])
def test_a_run_id_is_a_name_not_a_path(cli, workdir, run_id):
    assert_one_line_error(cli("run", "digits", "--epochs", "1", "--run-id", run_id), "a run id is a name, not a path")
    assert not (workdir / "runs").exists() and not (workdir / "escaped").exists()


@pytest.mark.parametrize("logdir, export_dir", [
    ("saved_models/runs", "saved_models"),  # runs inside the exports: run id "1" would be version 1
    ("runs", "runs/exports"),
    ("out", "out"),
    ("out/../same", "same"),
])
def test_logdir_and_export_dir_must_be_apart(cli, workdir, logdir, export_dir):
    line = assert_one_line_error(cli("run", "digits", "--epochs", "1", "--logdir", logdir, "--export-dir", export_dir),
                                 "overlap")
    assert f"--logdir {logdir}" in line and f"--export-dir {export_dir}" in line
    assert not os.listdir(workdir)


def test_nested_directories_are_fine_without_an_export(cli, workdir):
    result = cli("run", "digits", "--epochs", "0", "--logdir", "out/runs", "--export-dir", "out", "--no-export")
    assert result.exit_code == 0, result.output


def test_launch_checks_paths_before_starting_workers(cli, workdir):
    assert_one_line_error(cli("launch", "--workers", "2", "digits", "--run-id", "../x"), "a run id is a name")


def test_version_listing_ignores_names_that_are_not_ascii_numbers(tmp_path):
    from tl_app.export.savedmodel import next_version, versions

    for name in ("1", "3", "²", "١٢", "v4", "05", ".tmp-export-x"):
        (tmp_path / name).mkdir()
    assert "²".isdigit()  # what a listing by str.isdigit() would have taken, and int() refuses
    assert versions(str(tmp_path)) == [1, 3, 5]
    assert next_version(str(tmp_path)) == 6
