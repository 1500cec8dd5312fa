"""Scale-out on DVC's own engines: the experiment queue runs seeds side by side, and a DVC
remote shares every artifact between clones so a second machine has nothing to recompute."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from conftest import TempRepo
from test_kws_e2e import TINY_CORPUS, TINY_KWS

TINY_DATA = {
    "data": {
        **TINY_CORPUS["data"],
        "librispeech": {"embedded": {"speakers": 3, "utterances": 1}},
        "esc50": {"embedded": {"clips_per_fold": 1}},
        "musan": {"embedded": {"music": 1, "noise": 1, "speech": 1, "seconds": 1.0}},
        "reasonaqa": {"embedded": {"rows": 12, "clips": 6}},
    }
}


def _exp_rows(repo: TempRepo) -> list[dict]:
    shown = json.loads(repo.run("dvc", "exp", "show", "--json").stdout)
    rows = []
    for rev in shown:
        for exp in rev.get("experiments") or []:
            for run in exp.get("revs") or []:
                rows.append(run)
    return rows


@pytest.mark.slow
@pytest.mark.e2e
def test_queue_runs_two_seeds_side_by_side_and_exp_show_lists_both(temp_repo):
    repo = temp_repo
    repo.set_params({**TINY_DATA, "kws": TINY_KWS})
    repo.commit("tiny")
    for seed in (668, 1337):
        repo.run("dvc", "exp", "run", "--queue", "-S", f"seed={seed}", "kws_analyze")
    repo.run("dvc", "queue", "start", "-j", "2")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = repo.run("dvc", "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    else:
        pytest.fail(f"queue did not finish:\n{status}")
    assert status.count("Success") == 2, status
    runs = _exp_rows(repo)
    seeds = set()
    for run in runs:
        data = run.get("data") or {}
        seeds.add(data.get("params", {}).get("params.yaml", {}).get("data", {}).get("seed"))
        metrics = data.get("metrics", {}).get("metrics/kws.json", {}).get("data", {})
        assert metrics, f"experiment without kws metrics: {run.get('name')}"
    assert {668, 1337} <= seeds, seeds
    repo.run("dvc", "queue", "stop")


@pytest.mark.slow
@pytest.mark.e2e
def test_remote_push_then_pull_in_another_clone_has_nothing_to_rerun(temp_repo, tmp_path):
    repo = temp_repo
    repo.set_params(TINY_DATA)
    remote = tmp_path / "remote"
    repo.run("dvc", "remote", "add", "-d", "lab", str(remote))
    repo.run("dvc", "repro", "data_report")
    repo.commit("ran data lane")
    repo.run("dvc", "push")
    assert any(remote.rglob("*")), "dvc push wrote nothing to the remote"

    clone_root = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.root), str(clone_root)], check=True)
    clone = TempRepo(clone_root)
    clone.run("dvc", "pull", "--with-deps", "data_report")
    assert (clone_root / "data/raw/esc50/source.json").is_file()
    out = clone.run("dvc", "repro", "data_report").stdout
    assert "Running stage" not in out, out
    status = clone.run("dvc", "status", "--with-deps", "data_report").stdout
    assert "up to date" in status, status
