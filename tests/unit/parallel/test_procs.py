"""audioprobe.parallel.procs: children side by side, the first failure stops the rest, stopped children clean up."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from audioprobe.parallel import procs
from conftest import REPO

# A child that records when it started and ended, holds an atomic temp folder while it
# "works", and exits with the given code (or is stopped by SIGTERM first).
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from audioprobe.parallel import procs
    from audioprobe.runtime.atomic import atomic_dir

    name, seconds, code, log = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    procs.exit_on_sigterm()
    with open(log, "a") as f:
        f.write(f"start {name} {time.time()}\\n")
    with atomic_dir(log.parent / name) as tmp:
        (tmp / "done").write_text("ok")
        time.sleep(seconds)
        if code:
            sys.exit(code)
    with open(log, "a") as f:
        f.write(f"end {name} {time.time()}\\n")
""")


def _job(tmp_path, name: str, seconds: float, code: int = 0) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return [sys.executable, str(script), name, str(seconds), str(code), str(tmp_path / "log")]


def _events(tmp_path) -> list[tuple[str, str, float]]:
    lines = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    return [(kind, name, float(t)) for kind, name, t in (line.split() for line in lines)]


@pytest.fixture(autouse=True)
def _child_imports_audioprobe(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "lib"))


def test_all_succeed_side_by_side(tmp_path):
    jobs = {n: _job(tmp_path, n, 1.5) for n in ("a", "b")}
    assert procs.run_side_by_side(jobs, at_once=2) is None
    ev = _events(tmp_path)
    starts = {n: t for k, n, t in ev if k == "start"}
    ends = {n: t for k, n, t in ev if k == "end"}
    assert set(ends) == {"a", "b"}
    assert starts["b"] < ends["a"]  # overlapped: b started before a finished
    assert all((tmp_path / n / "done").read_text() == "ok" for n in ("a", "b"))


def test_at_once_1_runs_in_order(tmp_path):
    jobs = {n: _job(tmp_path, n, 0.2) for n in ("a", "b", "c")}
    assert procs.run_side_by_side(jobs, at_once=1) is None
    ev = [(k, n) for k, n, _ in _events(tmp_path)]
    assert ev == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b"), ("start", "c"), ("end", "c")]


def test_first_failure_stops_the_running_and_skips_the_queued(tmp_path):
    jobs = {"slow": _job(tmp_path, "slow", 60), "bad": _job(tmp_path, "bad", 0.5, code=3),
            "queued": _job(tmp_path, "queued", 0.1)}
    t0 = time.perf_counter()
    assert procs.run_side_by_side(jobs, at_once=2) == ("bad", 3)
    assert time.perf_counter() - t0 < 30  # slow (60 s) was stopped, not waited for
    names = {n for _, n, _ in _events(tmp_path)}
    assert names == {"slow", "bad"}  # queued never started
    assert not any(k == "end" for k, _, _ in _events(tmp_path))
    # the stopped child's atomic temp folder was removed on SIGTERM; no output appeared
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "log"]


def test_at_once_must_be_positive():
    with pytest.raises(ValueError, match="at_once"):
        procs.run_side_by_side({}, at_once=0)


def test_launch_argv_runs_the_launcher_with_this_interpreter():
    argv = procs.launch_argv(2, "stages.kws_train", ["--replica", 0])
    assert argv == [sys.executable, "-m", "audioprobe.parallel.launch", "--nproc", "2", "-m", "stages.kws_train",
                    "--replica", "0"]


PARENT = textwrap.dedent("""
    import json, sys
    from audioprobe.parallel import procs
    jobs = json.loads(sys.argv[1])
    try:
        procs.run_side_by_side(jobs, at_once=2, poll_s=0.0)  # poll as fast as it can: the race window is wide
    except SystemExit as exc:
        print("exit", exc.code, flush=True)
        raise
""")


@pytest.mark.parametrize("trial", range(5))
def test_a_stopped_parent_stops_its_children_and_exits_143(tmp_path, trial):
    """SIGTERM while the children run: they are stopped (their temp folders removed), the parent
    exits 143, and never hangs waiting for a child it already reaped."""
    import json
    import signal
    import subprocess

    (tmp_path / "parent.py").write_text(PARENT)
    jobs = {"a": _job(tmp_path, "a", 60), "b": _job(tmp_path, "b", 60)}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "parent.py"), json.dumps(jobs)],
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_events(tmp_path)) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "exit 143" in out
    assert [kind for kind, _, _ in _events(tmp_path)] == ["start", "start"]  # neither child finished
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / "a").exists()
