"""The command line (`python -m training.train`): same engine as the app, progress on stdout,
the run's folder on the last line, a non-zero exit code when the run did not finish."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import train
from tests.test_trainer import quadrant_images

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # see tests/test_jobs.py
    return tmp_path


def test_a_tiny_run_prints_progress_and_its_folder(home, monkeypatch, capsys):
    monkeypatch.setattr(train, "load_dataset", lambda name, options: quadrant_images(n_train=256, n_val=64))
    code = train.main(["--preset", "digits-cnn", "--dataset", "quadrants", "--epochs", "3", "--batch-size", "32",
                       "--lr", "0.003"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith("Training digits-cnn on quadrants (256 training / 64 validation examples)")
    assert "adam lr 0.003, batch 32, 3 epochs = 24 steps" in lines[0]
    assert any(line.startswith("epoch") and "samples/s" in line for line in lines)
    assert sum(" done  val acc" in line or " done  val loss" in line for line in lines) == 3  # one per epoch
    assert "finished on cpu: Finished 24 steps." in out
    folder = Path(lines[-1].removeprefix("run folder: "))
    assert folder.parent == home / "runs" and (folder / "run.json").is_file()
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"


def test_a_diverged_run_exits_non_zero(home, monkeypatch, capsys):
    def nan_data(name, options):
        data = quadrant_images(n_train=64, n_val=16)
        data.x_train[:] = float("nan")
        return data

    monkeypatch.setattr(train, "load_dataset", nan_data)
    code = train.main(["--preset", "digits-cnn", "--dataset", "quadrants", "--epochs", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "diverged" in out and "try a lower learning rate" in out and "run folder:" in out


def test_bad_settings_are_refused_in_plain_words(home, monkeypatch, capsys):
    monkeypatch.setattr(train, "load_dataset", lambda name, options: quadrant_images(n_train=64, n_val=16))
    assert train.main(["--preset", "digits-cnn", "--dataset", "quadrants", "--lr", "-1"]) == 2
    assert "error: the learning rate must be a number above 0" in capsys.readouterr().err
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_dataset_options_are_read_as_numbers_when_they_are():
    assert train.parse_options(["n=2000", "noise=0.1", "name=abc", "flip=true"]) == {
        "n": 2000, "noise": 0.1, "name": "abc", "flip": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        train.parse_options(["oops"])


def test_the_command_line_trains_a_builtin_dataset_end_to_end(home):
    pytest.importorskip("training.datasets")
    result = subprocess.run(
        [sys.executable, "-m", "training.train", "--preset", "digits-cnn", "--dataset", "digits", "--epochs", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=240, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("run folder: ")
    folder = Path(last.removeprefix("run folder: "))
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["dataset"]["source"]["builtin"] == "digits"
    assert not (folder / "data.safetensors").exists()  # the worker rebuilt the data from its name
    assert "val acc" in result.stdout
