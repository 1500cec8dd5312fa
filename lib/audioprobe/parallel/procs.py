"""Run several stage processes side by side, all or nothing.

A kws replica trains its two conditions as two independent processes; on a 2-core box
with one torch thread each they finish in about the time of the longer one instead of
the sum (a small recurrent net does not get faster from a second thread or a second
data-parallel rank, but two separate runs use both cores). `run_side_by_side` starts at
most `at_once` children, in order; the first child that exits non-zero stops the running
ones with SIGTERM, the queued ones never start, and its name and exit code are returned.

A child run this way calls `exit_on_sigterm()` so that being stopped raises SystemExit
and its `audioprobe.runtime.atomic` temp folders are removed on the way out.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence



def launch_argv(nproc: int, module: str, args: Sequence[str]) -> list[str]:
    """argv of `python -m audioprobe.parallel.launch --nproc N -m module args` with this interpreter."""
    # By name, not an import: every stage that stops on SIGTERM imports this module, and the
    # launcher's code is a dependency of the launched stages only.
    return [sys.executable, "-m", "audioprobe.parallel.launch", "--nproc", str(nproc), "-m", module, *map(str, args)]


def run_side_by_side(jobs: Mapping[str, Sequence[str]], at_once: int,
                     poll_s: float = 0.1) -> tuple[str, int] | None:
    """Run each job (name -> argv) as a child process, at most `at_once` at a time, in order.

    Children share this process's stdout/stderr, environment and working directory.
    Return None when every child exits 0, else (name, exit code) of the first that did not;
    the others are then stopped (SIGTERM, then waited for) or never started. SIGTERM or Ctrl-C
    here stops the running children the same way, then raises SystemExit(143) or
    KeyboardInterrupt.

    While children run, SIGTERM and SIGINT only set a flag that the polling loop reads: raised
    from a signal handler, the exception can land inside Popen.poll() between taking and
    releasing its wait lock, and the wait() that follows then blocks forever on a reaped child
    (seen: a stopped kws_train replica hung with two zombie children).
    """
    if at_once < 1:
        raise ValueError(f"at_once must be >= 1, got {at_once}")
    queue = list(jobs.items())
    running: dict[str, subprocess.Popen] = {}
    failure: tuple[str, int] | None = None
    stopped: list[int] = []
    handlers = {sig: signal.signal(sig, lambda signum, frame: stopped.append(signum))  # noqa: ARG005
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while failure is None and not stopped and (queue or running):
            while queue and len(running) < at_once:
                name, argv = queue.pop(0)
                running[name] = subprocess.Popen(list(argv))
            done = [(name, proc.returncode) for name, proc in running.items() if proc.poll() is not None]
            for name, code in done:
                del running[name]
                if code and failure is None:
                    failure = (name, code)
            if not done:
                time.sleep(poll_s)
    finally:
        for proc in running.values():
            proc.terminate()
        for proc in running.values():
            proc.wait()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if stopped:
        if stopped[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signal.SIGTERM)
    return failure


def _sigterm_to_exit(signum, frame) -> None:  # noqa: ARG001
    raise SystemExit(128 + signal.SIGTERM)


def exit_on_sigterm():
    """Make SIGTERM raise SystemExit(143) in this process, so context managers (atomic_dir)
    remove their temp folders on the way out; return the previous handler.

    The one SIGTERM handler of the package: a stage stopped by DVC or `kill`, a run stopped by
    its side-by-side parent, a torchrun rank stopped because a peer failed."""
    return signal.signal(signal.SIGTERM, _sigterm_to_exit)
