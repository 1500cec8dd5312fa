"""Training curves through dvclive: one folder per run, one row per eval point, no timestamps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def curve_logger(folder: str | Path) -> Iterator[Callable[[dict], None]]:
    """Yield log(row) writing row's metrics (all but 'step') at row['step'] under folder/plots/metrics/.

    dvclive runs without its DVC integration (no experiment, no dvc.yaml, no report), so
    the folder holds only TSV curves and metrics.json, byte-identical across reruns.
    """
    from dvclive import Live

    live = Live(dir=str(folder), save_dvc_exp=False, dvcyaml=False, report=None, monitor_system=False)
    def log(row: dict) -> None:
        live.step = int(row["step"])
        for k, v in row.items():
            if k != "step":
                live.log_metric(k, float(v), timestamp=False)
        live.next_step()

    try:
        yield log
    finally:
        live.end()
