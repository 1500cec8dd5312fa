"""Training curves logged with dvclive, one folder per run, byte-identical across reruns.

`TrainingLog(dir).log(step, train_loss=..., val_acc=...)` appends one row per metric to
`<dir>/plots/metrics/<metric>.tsv` (columns `step`, `<metric>`) and rewrites
`<dir>/metrics.json` (the latest values and `step`; a name with "/" nests, e.g.
`train/loss` -> `plots/metrics/train/loss.tsv`). `summary(**values)` adds final values
to metrics.json only. Nothing else is written: no
timestamps, no dvc.yaml, no report, no DVC experiment, so two identical runs give
identical files and the folder can be a DVC output. During `dvc exp run` the files
update after every logged step, so `dvc plots show` follows a run while it trains.
"""

from __future__ import annotations

import math
from pathlib import Path


class TrainingLog:
    """A dvclive logger for one run; use as a context manager or call close()."""

    def __init__(self, directory: str | Path):
        from dvclive import Live

        # dvcyaml=None: the pipeline's dvc.yaml declares the plots; save_dvc_exp=False:
        # the run is a stage of `dvc repro`/`dvc exp run`, never an experiment of its own.
        self.dir = Path(directory)
        self._live = Live(str(self.dir), dvcyaml=None, save_dvc_exp=False, report=None)
        self._last_step: int | None = None

    def log(self, step: int, **metrics: float) -> None:
        """Record `metrics` at `step` (steps strictly increase; values finite)."""
        if self._last_step is not None and step <= self._last_step:
            raise ValueError(f"steps must increase, got {step} after {self._last_step}")
        bad = {k: v for k, v in metrics.items() if not math.isfinite(float(v))}
        if bad:
            raise ValueError(f"non-finite metrics at step {step}: {bad}")
        self._live.step = step
        for name, value in metrics.items():
            self._live.log_metric(name, float(value))  # timestamp=False (dvclive default)
        self._live.make_summary()
        self._last_step = step

    def summary(self, **values: float | int | str) -> None:
        """Record final values (e.g. best_epoch) in metrics.json only, not as curves."""
        for name, value in values.items():
            self._live.log_metric(name, value, plot=False)
        self._live.make_summary()

    def close(self) -> None:
        """Flush the summary; safe to call twice.

        Not dvclive's `end()`: inside `dvc exp run` that stages the run folder in git, and two
        runs training side by side (kws_train) then wrote .git/index at once and one failed on
        dulwich's index lock. Every file is already written by `make_summary`; git is DVC's.
        """
        if self._live is not None:
            self._live.make_summary()
            self._live = None

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
