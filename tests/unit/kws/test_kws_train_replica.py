"""kws_train for a whole replica: both conditions in child processes, side by side, all or nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, deep_update, stage_env
from test_kws_dist import TINY, write_fake_cache


def _stage(tmp_path, *args, override: dict | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(deep_update(json.loads(json.dumps(TINY)), override or {})))
    features = tmp_path / "features"
    if not features.exists():
        write_fake_cache(features)
    cmd = [sys.executable, "-m", "stages.kws_train", "--replica", "0", "--seed", "42", "--features", str(features),
           "--params", str(params), *args]
    return subprocess.run(cmd, cwd=REPO, env=stage_env(env), capture_output=True, text=True, timeout=300)


def _files(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [2, 1])
def test_replica_trains_both_conditions_exactly_as_single_runs(tmp_path, parallel):
    both = _stage(tmp_path, "--runs", str(tmp_path / "runs"), "--curves", str(tmp_path / "curves"),
                  override={"kws": {"train": {"parallel": parallel}}})
    assert both.returncode == 0, both.stderr[-3000:]
    how = "side by side" if parallel == 2 else "one after the other"
    assert f"kws_train replica 0: base-0, lif-0 trained {how}" in both.stdout
    for cond in ("base", "lif"):
        one = _stage(tmp_path, "--condition", cond, "--out", str(tmp_path / f"one-{cond}"),
                     "--live", str(tmp_path / f"one-live-{cond}"), "--no-progress")
        assert one.returncode == 0, one.stderr[-3000:]
        got = _files(tmp_path / "runs" / f"{cond}-0")
        assert set(map(str, got)) == {"model.safetensors", "result.json", "test_predictions.csv"}
        assert got == _files(tmp_path / f"one-{cond}")
        assert _files(tmp_path / "curves" / cond) == _files(tmp_path / f"one-live-{cond}")
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_failing_run_replaces_nothing_and_says_which(tmp_path):
    runs, curves = tmp_path / "runs", tmp_path / "curves"
    for folder in (runs / "base-0", runs / "lif-0", curves / "base-0", curves / "lif-0"):
        folder.mkdir(parents=True)
        (folder / "last-good").write_text(folder.name)
    before = _files(runs) | _files(curves)
    bad = _stage(tmp_path, "--runs", str(runs), "--curves", str(curves),
                 env={"AUDIOPROBE_TEST_FAULT": "kws_train.lif-0@0"})
    assert bad.returncode == 1
    last = bad.stderr.strip().splitlines()[-1]
    assert last == ("error: kws_train replica 0: run lif-0 failed (exit code 1, its error is above);"
                    " the other runs were stopped and no run folder was replaced")
    assert "injected test fault" in bad.stderr
    assert _files(runs) | _files(curves) == before  # base-0 may have finished: still not replaced
    assert not list(tmp_path.rglob(".*.tmp"))


@pytest.mark.parametrize("args, override, message", [
    (["--out", "x"], None, "error: --out and --live name one run's folders: give --condition too"),
    (["--condition", "gru"], None, "error: --condition 'gru' is not one of base, lif"),
    ([], {"kws": {"train": {"replicas": [1]}}}, "error: --replica 0 is not in params.yaml"),
    ([], {"kws": {"train": {"parallel": 3}}}, "kws.train.parallel"),
])
def test_bad_arguments_and_params_are_one_line(tmp_path, args, override, message):
    bad = _stage(tmp_path, *args, "--runs", str(tmp_path / "r"), override=override)
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and message in bad.stderr, bad.stderr
    assert not (tmp_path / "r").exists()


def test_a_stopped_replica_stops_its_runs_and_leaves_no_temp_folder(tmp_path):
    """SIGTERM to the stage (what a job scheduler sends): the children are stopped too, every
    temp folder is removed and the last good folders stay."""
    import signal
    import time

    runs, curves = tmp_path / "runs", tmp_path / "curves"
    (runs / "base-0").mkdir(parents=True)
    (runs / "base-0" / "last-good").write_text("base-0")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(deep_update(json.loads(json.dumps(TINY)),
                                                 {"kws": {"train": {"epochs": 500, "parallel": 2}}})))
    write_fake_cache(tmp_path / "features")
    cmd = [sys.executable, "-m", "stages.kws_train", "--replica", "0", "--seed", "42", "--features",
           str(tmp_path / "features"), "--params", str(params), "--runs", str(runs), "--curves", str(curves)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children_writing = [runs / "..base-0.tmp.tmp", runs / "..lif-0.tmp.tmp"]  # each run's own temp folder
    deadline = time.monotonic() + 120
    while not all(p.exists() for p in children_writing):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    time.sleep(2)  # an orphaned child would still be writing here
    left = sorted(str(p.relative_to(tmp_path)) for p in [*runs.rglob("*"), *curves.rglob("*")])
    assert left == ["runs/base-0", "runs/base-0/last-good"], left
