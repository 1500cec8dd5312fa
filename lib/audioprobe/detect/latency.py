"""Latency tables: per-clip component times -> mean and p95 per system (host-dependent, never a DVC output)."""

from __future__ import annotations

import numpy as np
import polars as pl

COMPONENTS = ("load_ms", "features_ms", "model_ms", "post_ms")  # what each scorer times per clip



def summary(system: str, per_clip: pl.DataFrame) -> dict:
    """{system, n, <component>_mean, <component>_p95, total_mean, total_p95} in ms."""
    t = per_clip.with_columns(pl.sum_horizontal(*COMPONENTS).alias("total_ms"))
    out: dict = {"system": system, "n": t.height}
    for c in (*COMPONENTS, "total_ms"):
        x = t[c].to_numpy()
        out[f"{c[:-3]}_mean_ms"] = round(float(np.mean(x)), 4)
        out[f"{c[:-3]}_p95_ms"] = round(float(np.percentile(x, 95)), 4)
    return out
