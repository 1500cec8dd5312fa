"""audioprobe.runtime.live: dvclive run folders hold one TSV per metric and nothing time-dependent."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from audioprobe.runtime.live import TrainingLog


def _run(dir):
    with TrainingLog(dir) as log:
        for epoch in range(3):
            log.log(epoch, **{"train/loss": 1.0 / (epoch + 1), "val/acc": 0.5 + epoch / 10})
        log.summary(best_epoch=1)


def test_one_tsv_per_metric_rows_per_step(tmp_path):
    _run(tmp_path / "run")
    loss = (tmp_path / "run/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"]
    assert [row.split("\t")[0] for row in loss[1:]] == ["0", "1", "2"]
    assert float(loss[2].split("\t")[1]) == 0.5
    summary = json.loads((tmp_path / "run/metrics.json").read_text())
    assert summary["best_epoch"] == 1 and summary["val"]["acc"] == 0.7


def test_two_identical_runs_are_byte_identical_and_hold_no_time(tmp_path):
    _run(tmp_path / "a")
    _run(tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    for rel in files_a:
        text = (tmp_path / "a" / rel).read_text()
        assert text == (tmp_path / "b" / rel).read_text()
        assert not re.search(r"timestamp|20\d\d-\d\d-\d\d", text), rel


def test_a_run_inside_dvc_exp_run_never_touches_the_git_index(tmp_path, monkeypatch):
    """Runs train side by side inside `dvc exp run` (kws_train: base and lif at once). dvclive's
    end() would stage the run folder in git there, and two processes writing .git/index at once
    failed one run (dulwich FileLocked); the log must leave git to DVC."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tracked.txt").write_text("x\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "init"]):
        subprocess.run(cmd if cmd[0] == "git" else [sys.executable, "-m", *cmd], cwd=repo, check=True,
                       capture_output=True)
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout
    os.utime(repo / "tracked.txt", (1, 1))  # stat info now differs from the index: a status refreshes it
    index = repo / ".git" / "index"
    before = index.read_bytes()
    monkeypatch.chdir(repo)
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", rev.strip())  # what `dvc exp run` sets for its stages
    monkeypatch.setenv("DVC_ROOT", str(repo))
    _run(Path("live") / "run")
    assert (repo / "live/run/metrics.json").is_file()
    assert index.read_bytes() == before, "the run folder's log wrote .git/index"
