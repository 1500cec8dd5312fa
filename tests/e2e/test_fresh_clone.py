"""A fresh clone's `dvc repro` reproduces the committed dvc.lock, metrics/ and plots/ byte for byte.

This is the promise behind `dvc metrics diff main other-branch`: the committed outputs are
what the committed code and params produce, on any machine. It clones HEAD (so it checks
what was committed, not the working tree), runs the whole embedded pipeline cold, and fails
if anything tracked under dvc.lock, metrics/ or plots/ changed or appeared. Slow (the whole
embedded default: about 15 minutes on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import OFFLINE_ENV, REPO


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_fresh_clone_dvc_repro_changes_nothing_committed(tmp_path):
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout with a commit")
    clone = tmp_path / "clone"
    _git("clone", "--quiet", "--no-hardlinks", str(REPO), str(clone), cwd=tmp_path)
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": f"{clone / 'lib'}{os.pathsep}{clone}"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, f"dvc repro failed\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    changed = _git("status", "--porcelain", "--untracked-files=all", "--", "dvc.lock", "metrics", "plots", cwd=clone)
    diff = _git("diff", "HEAD", "--stat", "--", "dvc.lock", "metrics", "plots", cwd=clone)
    detail = _git("diff", "HEAD", "--", "dvc.lock", "metrics", cwd=clone)[:4000]
    assert not changed.strip(), f"a fresh clone's dvc repro changed committed outputs:\n{changed}\n{diff}\n{detail}"
    again = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=600)
    assert "up to date" in again.stdout, again.stdout

    # The README's per-lane experiment view fits a 200-column terminal with nothing elided.
    from audioprobe.tools.cli import LANES, exp_show_args

    for lane in (name for name in LANES if name != "data"):
        shown = subprocess.run([sys.executable, "-m", "dvc", *exp_show_args(lane)], cwd=clone,
                               env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=600)
        lines = shown.stdout.splitlines()
        assert shown.returncode == 0 and lines, shown.stderr
        assert max(len(line) for line in lines) <= 200 and "…" not in shown.stdout, shown.stdout
