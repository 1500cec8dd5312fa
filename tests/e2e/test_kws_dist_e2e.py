"""kws data-parallel training through the real dvc: dvc exp run -S kws.train.nproc=2 trains every run under torchrun."""

from __future__ import annotations

import json

import pytest
import yaml


@pytest.mark.slow
@pytest.mark.e2e
def test_dvc_exp_run_with_nproc_2_trains_under_torchrun(temp_repo):
    """`dvc exp run -S kws.train.nproc=2` is all a user types (tiny embedded corpus)."""
    from test_kws_e2e import TINY_CORPUS, TINY_KWS

    repo = temp_repo
    repo.set_params({**TINY_CORPUS, "kws": TINY_KWS})
    repo.commit("tiny kws")
    # parallel 1: the replica's two runs in turn, each as 2 torchrun workers
    exp = repo.run("dvc", "exp", "run", "-S", "kws.train.nproc=2", "-S", "kws.train.parallel=1", "kws_train@0")
    assert "Running stage 'kws_train@0'" in exp.stdout, exp.stdout[-3000:]
    assert exp.stdout.count("2 processes (gloo)") == 2, exp.stdout[-3000:]
    assert "base-0, lif-0 trained one after the other" in exp.stdout, exp.stdout[-3000:]
    lock = yaml.safe_load((repo.root / "dvc.lock").read_text())["stages"]["kws_train@0"]
    assert lock["params"]["params.yaml"]["kws.train"]["nproc"] == 2
    for run in ("base-0", "lif-0"):
        rec = json.loads((repo.root / f"data/kws/runs/{run}/result.json").read_text())
        assert rec["epochs"] == 1 and 0.0 <= rec["test_acc"] <= 1.0
        cond = run.split("-")[0]
        assert (repo.root / f"plots/kws/train/0/{cond}/plots/metrics/val_acc.tsv").is_file()
    assert not list((repo.root / "data/kws/runs").glob(".*.tmp"))
    assert "up to date" in repo.run("dvc", "status", "kws_train@0").stdout
