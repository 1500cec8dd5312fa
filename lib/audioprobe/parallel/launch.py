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

`--param KEY` names the params key `--nproc` came from (dvc.yaml passes it), so a bad value is
one line naming that key: below 1, or above what this node can run — its visible GPUs when CUDA
is present, else its CPU cores — refused before any worker starts. torchrun's log folder (the
workers' error files) is a temporary folder removed when the launch ends, whatever the outcome
(left alone, torchrun leaves a /tmp/torchelastic_* folder behind per launch).

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
import tempfile


class NprocError(ValueError):
    """A worker count this node cannot run; its message is the one line to print."""


def _parse(argv: list[str]) -> tuple[int, str, list[str], str | None]:
    # Everything after `-m MODULE` belongs to the module (argparse would try to read its
    # options as ours), so split there first.
    p = argparse.ArgumentParser(prog="python -m audioprobe.parallel.launch", usage="%(prog)s [--nproc N] -m MODULE [ARGS ...]",
                                description=(__doc__ or "").splitlines()[0])
    p.add_argument("--nproc", type=int, default=1, help="worker processes on this node (1: run in-process)")
    p.add_argument("--param", default=None, help="the params key --nproc came from (named in errors)")
    if "-m" not in argv or argv.index("-m") == len(argv) - 1:
        p.error("missing -m MODULE (the stage to run, e.g. -m stages.kws_train)")
    i = argv.index("-m")
    ns = p.parse_args(argv[:i])
    if ns.nproc < 1 and ns.param is None:
        p.error(f"--nproc must be >= 1, got {ns.nproc}")
    return ns.nproc, argv[i + 1], argv[i + 2 :], ns.param


def check_nproc(nproc: int, param: str | None, gpus: int | None = None, cores: int | None = None) -> None:
    """Raise NprocError (one line naming `param`) unless 1 <= nproc <= this node's GPUs (when any) or cores."""
    where = f"params.yaml: {param} = {nproc}" if param else f"--nproc {nproc}"
    if nproc < 1:
        raise NprocError(f"{where}: must be >= 1 (worker processes on this node; 1 runs in-process)")
    if nproc == 1:
        return
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cores = cores if cores is not None else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                             else os.cpu_count() or 1)
    limit, what = (gpus, "visible GPUs (one worker per GPU)") if gpus else (cores, "CPU cores")
    if nproc > limit:
        raise NprocError(f"{where}: this node has {limit} {what}; set it to at most {limit}")


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
    # torchrun's logs and the workers' error files go to a folder of ours, removed at the end
    with tempfile.TemporaryDirectory(prefix="audioprobe-torchrun-") as logs:
        targs = torchrun.parse_args(["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", "0",
                                     "--log-dir", logs, "-m", module, *args])
        try:
            torchrun.run(targs)
        except ChildFailedError as exc:
            print(_failure_line(module, nproc, exc.failures), file=sys.stderr)
            return 1
        except SignalException as exc:
            # Stopped from outside (SIGTERM from a parent such as audioprobe.parallel.procs, or Ctrl-C):
            # torchrun has already stopped the workers. Exit as a stopped process would, without
            # the agent's traceback.
            return 128 + int(exc.sigval)
    return 0


def main(argv: list[str] | None = None) -> None:
    nproc, module, args, param = _parse(sys.argv[1:] if argv is None else argv)
    try:
        check_nproc(nproc, param)
    except NprocError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    if nproc == 1:
        run_inprocess(module, args)
        return
    sys.exit(run_torchrun(nproc, module, args))


if __name__ == "__main__":
    main()
