"""The conditioning folder: written by phase0_conditioning, read by phase0_metrics.

This module owns the format; no other code names its files or keys. Layout of
`data/phase0/conditioning/` (safetensors and JSON only, never pickles: the eval side only
transforms and assigns with these arrays):

- `target_norm.safetensors`: `mean`, `std` [D] float32, the Δx normalisation fitted on
  train rows (`write_target_norm`).
- `lag{L}.safetensors`: the arrays fitted for lag L (`conditioning.fit_lag`'s tensors:
  `<scheme>.centroids`, `pca.*`, `pca8_quartile.edges` / `.centres`).
- `lag{L}_assignments.safetensors`: `<split>.rows` int64 (the split's target rows, sorted),
  then per scheme and split `<scheme>.<split>.labels` (cluster ids), `.distance`
  (assignment distances) and `.random_labels` int32 (the random control's permuted ids).
- `fit.json`: `FitInfo` (settings, rows per split, latent dim, and per lag the subsample
  sizes and k-means / PCA summaries); sorted keys, 2-space indent.

Nothing time- or host-dependent is written: two runs give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.runtime.atomic import write_json
from audioprobe.runtime.errors import DataError

NORM = "target_norm.safetensors"
INFO = "fit.json"
_RERUN = "rerun `dvc repro phase0_conditioning`"

# (cluster ids, assignment distances, random-control ids) of one scheme on one split
Ids = tuple[np.ndarray, np.ndarray, np.ndarray]


def _fitted(lag: int) -> str:
    return f"lag{lag}.safetensors"


def _assignments(lag: int) -> str:
    return f"lag{lag}_assignments.safetensors"


@dataclass(frozen=True)
class FitInfo:
    """`fit.json`."""

    seed: int
    window: int
    lags: list[int]
    schemes: list[str]
    n_clusters: dict[str, int]  # ids a scheme can emit
    kmeans_init: str
    kmeans_n_init: int
    kmeans_max_iter: int
    rows: dict[str, int]  # target rows per split
    dim: int  # latent dimension D
    per_lag: dict[int, dict]  # conditioning.fit_lag's info per lag
    kmeans_tol: float = 1e-4  # sklearn's relative tolerance (fit.json before it: sklearn's default)

    def to_json(self) -> dict:
        return {"seed": self.seed, "window": self.window, "lags": list(self.lags), "schemes": list(self.schemes),
                "n_clusters": dict(self.n_clusters),
                "kmeans": {"init": self.kmeans_init, "n_init": self.kmeans_n_init, "max_iter": self.kmeans_max_iter,
                           "tol": self.kmeans_tol},
                "rows": dict(self.rows), "dim": self.dim, "per_lag": {str(k): v for k, v in self.per_lag.items()}}

    @classmethod
    def from_json(cls, d: dict) -> FitInfo:
        km = d["kmeans"]
        return cls(seed=int(d["seed"]), window=int(d["window"]), lags=[int(v) for v in d["lags"]],
                   schemes=list(d["schemes"]), n_clusters={k: int(v) for k, v in d["n_clusters"].items()},
                   kmeans_init=km["init"], kmeans_n_init=int(km["n_init"]), kmeans_max_iter=int(km["max_iter"]),
                   rows={k: int(v) for k, v in d["rows"].items()}, dim=int(d["dim"]),
                   per_lag={int(k): v for k, v in d["per_lag"].items()}, kmeans_tol=float(km.get("tol", 1e-4)))


def write_target_norm(folder: Path, mean: np.ndarray, std: np.ndarray) -> None:
    from safetensors.numpy import save_file

    save_file({"mean": mean, "std": std}, str(Path(folder) / NORM))


def write_lag(folder: Path, lag: int, tensors: Mapping[str, np.ndarray], rows: Mapping[str, np.ndarray],
              ids: Mapping[str, Mapping[str, Ids]]) -> None:
    """Write one lag's fitted arrays and the assignments {scheme: {split: Ids}} of the splits' `rows`."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(folder / _fitted(lag)))
    arrays = {f"{s}.rows": r for s, r in rows.items()}
    for scheme, per_split in ids.items():
        for split, (labels, distance, random_labels) in per_split.items():
            arrays[f"{scheme}.{split}.labels"] = labels
            arrays[f"{scheme}.{split}.distance"] = distance
            arrays[f"{scheme}.{split}.random_labels"] = random_labels.astype(np.int32)
    save_file(arrays, str(folder / _assignments(lag)))


def write_info(folder: Path, info: FitInfo) -> None:
    write_json(Path(folder) / INFO, info.to_json())


def _load(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise DataError(f"{path}: missing; {_RERUN}")
    return load_file(str(path))


def read_info(folder: Path) -> FitInfo:
    path = Path(folder) / INFO
    if not path.is_file():
        raise DataError(f"{path}: missing; {_RERUN}")
    return FitInfo.from_json(json.loads(path.read_text()))


def read_target_norm(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the train Δx."""
    norm = _load(Path(folder) / NORM)
    return norm["mean"], norm["std"]


def read_assignments(folder: Path, lag: int, schemes: Sequence[str],
                     rows: Mapping[str, np.ndarray]) -> dict[str, dict[str, Ids]]:
    """{scheme: {split: Ids}} of one lag for the splits of `rows` (split -> its sorted target rows
    in the frame index); a split whose rows differ from the fitted ones is a DataError."""
    path = Path(folder) / _assignments(lag)
    arrays = _load(path)
    for split, r in rows.items():
        if not np.array_equal(arrays.get(f"{split}.rows"), r):
            raise DataError(f"{path}: {split} rows differ from the frame index; {_RERUN}")
    return {scheme: {split: (arrays[f"{scheme}.{split}.labels"], arrays[f"{scheme}.{split}.distance"],
                             arrays[f"{scheme}.{split}.random_labels"])
                     for split in rows}
            for scheme in schemes}
