"""Tier 1 chart data: long tables the DVC plots (templates in vega/) draw, one row per point.

Every row carries `series` = "<encoder> <rate> <model>" (the line it belongs to), so a
chart names every run; nothing undefined is written as 0 (blank cells are left out of the line).
"""

from __future__ import annotations

from typing import Any

BY_K_COLUMNS = ("k", "series", "encoder", "rate", "frame_rate", "family", "dnll_per_dim_mean",
                "dnll_per_dim_median", "dnll_per_dim_trim", "dnll_ctx_per_dim_mean", "dnll_ctx_per_dim_median",
                "cos_mean", "cos_median")
STEP_COLUMNS = ("step", "mode", "series", "encoder", "rate", "frame_rate", "family", "rollouts", "finite",
                "injection_resets",
                "dnll_per_dim_mean", "dnll_per_dim_median", "cos_mean", "cos_median", "mag_ratio_mean",
                "mag_ratio_median", "state_err_mean", "state_err_median")


def series_name(row: dict[str, Any]) -> str:
    return f"{row['encoder']} {row['rate']} {row['family']}"


def by_k_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the ΔNLL/dim and cosine vs k chart data from the comparison rows."""
    return [{c: (series_name(r) if c == "series" else r.get(c)) for c in BY_K_COLUMNS} for r in rows]


def step_chart_rows(injection: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the per-step chart data (modes A–D) from the injection rows."""
    return [{c: (series_name(r) if c == "series" else r.get(c)) for c in STEP_COLUMNS} for r in injection]


def csv_ready(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return rows with floats rounded to 6 significant digits and NaN/inf as blank cells."""
    def cell(v: Any) -> Any:
        if isinstance(v, float):
            return None if v != v or v in (float("inf"), float("-inf")) else float(f"{v:.6g}")
        return v
    return [{k: cell(v) for k, v in r.items()} for r in rows]
