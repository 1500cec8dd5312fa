"""The kws run folder: one trained run, written by kws_train and read by kws_analyze.

This module owns the format; no other code names its files or keys. Layout of
`data/kws/runs/<condition>-<replica>/` (`run_dir`):

- `model.safetensors`: the run's best-validation state dict (the net of
  `audioprobe.kws.net.build_kws_net`), with one metadata key `audioprobe.kws_run` = JSON
  `{condition, epoch (the best epoch), replica, seed, torch_seed}`, sorted keys. One key
  only: safetensors writes several in hash-map order, which would make the checkpoints of
  two bit-identical runs hash differently.
- `test_predictions.csv`: columns `relpath, actual, predicted` (words), one row per test
  clip in the feature cache's order (`Prediction`).
- `result.json`: `RunResult`, sorted keys, 2-space indent, trailing newline;
  `checkpoint_sha256` is the sha256 of `model.safetensors`.

Nothing time-dependent is written: the folder is a DVC output, and two bit-identical
runs must hash the same (wall-clock time is printed by the stage).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from audioprobe.runtime.atomic import write_csv
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.provenance import sha256_file

if TYPE_CHECKING:
    import torch

MODEL = "model.safetensors"
PREDICTIONS = "test_predictions.csv"
RESULT = "result.json"
FILES = (RESULT, MODEL, PREDICTIONS)
METADATA_KEY = "audioprobe.kws_run"


class TrainedRun(TypedDict):
    """What training reports about one run: `result.json` less the checkpoint hash."""

    condition: str  # base | lif
    replica: int
    seed: int  # the global seed
    torch_seed: int  # derived from seed and replica (training.replica_seed)
    best_epoch: int  # the checkpoint kept: best validation accuracy (ties keep the earlier)
    best_val_acc: float
    test_acc: float  # of the best-validation checkpoint
    test_loss: float
    epochs: int  # epochs run
    max_epochs: int  # kws.train.epochs
    stop: str  # plateau | epochs
    n_classes: int
    n_params: int
    n_train: int
    n_validation: int
    n_test: int
    cfc_impl: str
    wiring: str
    norm_preserve: bool
    device: str
    threads: int
    torch_version: str
    data_sha256: str  # of the corpus the feature cache was computed from


class RunResult(TrainedRun):
    """`result.json`: the trained run and the sha256 of its checkpoint."""

    checkpoint_sha256: str


@dataclass(frozen=True)
class Prediction:
    """One row of `test_predictions.csv`."""

    relpath: str
    actual: str
    predicted: str


def run_name(condition: str, replica: int) -> str:
    """A run's folder name (and its name in tables): `<condition>-<replica>`."""
    return f"{condition}-{replica}"


def run_dir(runs: str | Path, condition: str, replica: int) -> Path:
    """The folder of one run inside the runs folder."""
    return Path(runs) / run_name(condition, replica)


def write_run(folder: str | Path, state: Mapping[str, torch.Tensor], predictions: Sequence[Prediction],
              trained: TrainedRun) -> RunResult:
    """Write a run's three files into `folder` (an existing, e.g. temporary, folder); return result.json."""
    from safetensors.torch import save_file

    folder = Path(folder)
    info = {"condition": trained["condition"], "replica": trained["replica"], "seed": trained["seed"],
            "torch_seed": trained["torch_seed"], "epoch": trained["best_epoch"]}
    save_file(dict(state), str(folder / MODEL), metadata={METADATA_KEY: json.dumps(info, sort_keys=True)})
    write_csv(folder / PREDICTIONS, [asdict(p) for p in predictions])
    result = RunResult(**trained, checkpoint_sha256=sha256_file(folder / MODEL))
    (folder / RESULT).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


@dataclass(frozen=True)
class KwsRun:
    """One run folder read back: its result.json and checkpoint."""

    folder: Path
    result: RunResult
    state: dict[str, torch.Tensor]

    @property
    def n_classes(self) -> int:
        return int(self.result["n_classes"])

    def load_into(self, model: torch.nn.Module) -> None:
        """Load the checkpoint into `model`; a shape or key mismatch is a DataError."""
        try:
            model.load_state_dict(self.state)
        except RuntimeError:
            raise DataError(f"{self.folder}/{MODEL} does not match params.yaml kws.model;"
                            " rerun `dvc repro kws_train`") from None



def read_run(folder: str | Path) -> KwsRun:
    """Read a run folder written by write_run; a missing, truncated or incomplete file is a DataError."""
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}; run `dvc repro kws_train` first")
    try:
        result = json.loads((folder / RESULT).read_text())
        state = load_file(str(folder / MODEL))
    except Exception as exc:  # a truncated or hand-edited file: name it, one line
        raise DataError(f"{folder}: unreadable run files ({type(exc).__name__}); rerun `dvc repro kws_train`") from None
    absent = sorted(RunResult.__required_keys__ - set(result))
    if absent:
        raise DataError(f"{folder}/{RESULT}: no {', '.join(absent)}; rerun `dvc repro kws_train`")
    return KwsRun(folder, result, state)


def read_predictions(folder: str | Path, words: Sequence[str], features: str | Path) -> list[Prediction]:
    """A run's test predictions; a word not in `words` (those of the feature cache `features`) is a DataError."""
    path = Path(folder) / PREDICTIONS
    with open(path, newline="") as f:
        try:
            rows = [Prediction(r["relpath"], r["actual"], r["predicted"]) for r in csv.DictReader(f)]
        except KeyError as exc:
            raise DataError(f"{path}: no column {exc}; rerun `dvc repro kws_train`") from None
    unknown = sorted({w for p in rows for w in (p.actual, p.predicted) if w not in words})
    if unknown:
        raise DataError(f"{path}: words {unknown} are not in {features}; rerun `dvc repro kws_train`")
    return rows
