"""audioprobe.parallel.launch: worker counts refused in one line naming their params key; no temp folders left."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audioprobe.parallel.launch import NprocError, check_nproc
from conftest import stage_env

KEY = "detect.llm.finetune.nproc"


def test_a_worker_count_below_one_names_its_params_key():
    with pytest.raises(NprocError) as e:
        check_nproc(0, KEY, gpus=0, cores=2)
    assert str(e.value).startswith(f"params.yaml: {KEY} = 0: must be >= 1") and "\n" not in str(e.value)


def test_more_workers_than_gpus_or_cores_are_refused_before_any_starts():
    check_nproc(2, KEY, gpus=0, cores=2)
    check_nproc(1, KEY, gpus=0, cores=1)
    with pytest.raises(NprocError, match=f"{KEY} = 3: this node has 2 CPU cores; set it to at most 2"):
        check_nproc(3, KEY, gpus=0, cores=2)
    with pytest.raises(NprocError, match=f"{KEY} = 2: this node has 1 visible GPUs"):
        check_nproc(2, KEY, gpus=1, cores=16)  # GPUs present: one worker per GPU


def _launch(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "audioprobe.parallel.launch", *argv], cwd=tmp_path,
                          env=stage_env({"TMPDIR": str(tmp)}), capture_output=True, text=True, timeout=300)


def test_the_launcher_prints_one_line_naming_the_key(tmp_path):
    proc = _launch(tmp_path, "--nproc", "0", "--param", KEY, "-m", "json.tool")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: params.yaml: {KEY} = 0: must be >= 1 (worker processes on "
                                                "this node; 1 runs in-process)"]
    too_many = str((os.cpu_count() or 1) + 1)
    proc = _launch(tmp_path, "--nproc", too_many, "--param", KEY, "-m", "json.tool")
    assert proc.returncode == 1 and f"{KEY} = {too_many}: this node has" in proc.stderr


def test_torchrun_leaves_no_temp_folder_behind(tmp_path):
    # each rank leaves a file (two ranks printing to one pipe interleave their writes: "rankrank 1")
    (tmp_path / "hello.py").write_text("import os, pathlib\n"
                                       "pathlib.Path('rank' + os.environ['RANK']).write_text('done')\n")
    proc = _launch(tmp_path, "--nproc", "2", "--param", KEY, "-m", "hello")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("rank*")) == ["rank0", "rank1"]
    assert list((tmp_path / "tmp").iterdir()) == []  # no torchelastic_* (nor our own) log folder
