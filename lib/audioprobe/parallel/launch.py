"""Run a stage module in this process (nproc 1) or as N torchrun workers on this node.

    python -m audioprobe.parallel.launch --nproc N -m stages.kws_train --condition base ...

dvc.yaml runs data-parallel stages through this so one params key (`kws.train.nproc`)
picks the launcher: `dvc exp run -S kws.train.nproc=2` is all a user types.

- nproc 1: the module runs in this very process (runpy, as `python -m` would), nothing
  distributed is set up, and results are those of a plain `python -m <module>`.
- nproc N > 1: torchrun's own launcher (torch.distributed.run, called in-process) starts N
  workers with a standalone c10d rendezvous on this node; backend and device are chosen by
  each worker (audioprobe.parallel.dist: nccl on CUDA, gloo on CPU). Several nodes are torchrun's job
  (docs/scaling.md shows `torchrun --nnodes ... --rdzv-backend c10d`); the
  stage module is the same.

A launcher stopped by SIGTERM or SIGINT stops its workers and exits 128 + the signal
number without a traceback. When a worker fails, torchrun stops the others and this prints ONE line,
`error: <module>: rank R of N failed (exit code C): <its error>`, naming the rank whose
error came first and was not just the echo of a peer vanishing, then exits 1. Workers
write outputs only through audioprobe.runtime.atomic, so nothing partial is left behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import sys


def _parse(argv: list[str]) -> tuple[int, str, list[str]]:
    # Everything after `-m MODULE` belongs to the module (argparse would try to read its
    # options as ours), so split there first.
    p = argparse.ArgumentParser(prog="python -m audioprobe.parallel.launch", usage="%(prog)s [--nproc N] -m MODULE [ARGS ...]",
                                description=(__doc__ or "").splitlines()[0])
    p.add_argument("--nproc", type=int, default=1, help="worker processes on this node (1: run in-process)")
    if "-m" not in argv or argv.index("-m") == len(argv) - 1:
        p.error("missing -m MODULE (the stage to run, e.g. -m stages.kws_train)")
    i = argv.index("-m")
    ns = p.parse_args(argv[:i])
    if ns.nproc < 1:
        p.error(f"--nproc must be >= 1, got {ns.nproc}")
    return ns.nproc, argv[i + 1], argv[i + 2 :]


def run_inprocess(module: str, args: list[str]) -> None:
    """Run `module` as __main__ with argv `args`, exactly as `python -m module args` would."""
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _failure_line(module: str, world: int, failures: dict) -> str:
    """One line naming the root-cause rank of a ChildFailedError's failures {rank: ProcessFailure}."""

    def info(f) -> dict:
        data = f.error_file_data if isinstance(f.error_file_data, dict) else {}
        return data.get("audioprobe") or {}

    def when(item) -> tuple:
        rank, f = item
        return (bool(info(f).get("secondary", False)), info(f).get("time", float(f.timestamp)), rank)

    rank, f = min(failures.items(), key=when)
    msg = f.message if isinstance(f.message, str) else (f.message or {}).get("message", "")
    if not info(f):  # no error file: killed by a signal, or died before audioprobe.parallel.dist started
        msg = f"signal {f.signal_name()}" if f.exitcode < 0 else "see its output above"
    return f"error: {module}: rank {rank} of {world} failed (exit code {f.exitcode}): {msg}"


def run_torchrun(nproc: int, module: str, args: list[str]) -> int:
    """Run `module` under torchrun --standalone --nproc-per-node nproc; return the exit code."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # torchrun's agent logs its rendezvous and the stack of a ChildFailedError at length;
    # the workers' own output and our one summary line say what matters.
    for name in ("torch.distributed.elastic", "torch.distributed.launcher", "torch.distributed.run"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # torchrun sets OMP_NUM_THREADS=1 with a warning when unset; the stage sets its own threads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    targs = torchrun.parse_args(["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0",
                                 "-m", module, *args])
    try:
        torchrun.run(targs)
    except ChildFailedError as exc:
        print(_failure_line(module, nproc, exc.failures), file=sys.stderr)
        return 1
    except SignalException as exc:
        # Stopped from outside (SIGTERM from a parent such as audioprobe.parallel.procs, or Ctrl-C):
        # torchrun has already stopped the workers, which removed their temp folders.
        # Exit as a stopped process would, without the agent's traceback.
        return 128 + int(exc.sigval)
    return 0


def main(argv: list[str] | None = None) -> None:
    nproc, module, args = _parse(sys.argv[1:] if argv is None else argv)
    if nproc == 1:
        run_inprocess(module, args)
        return
    sys.exit(run_torchrun(nproc, module, args))


if __name__ == "__main__":
    main()
