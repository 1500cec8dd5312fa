"""Headline values and committed tables of detect_eval; latency rows from the host side folder and their Pareto front."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from audioprobe.detect.latency import summary
from audioprobe.runtime.headline import STATUS

_STATUS = {"censored-low": STATUS["censored_low"], "censored-high": STATUS["censored_high"],
           "no-rise": STATUS["no_rise"]}


def headline_values(results: dict[str, dict], systems: list[str]) -> dict:
    """Per system: test balanced accuracy and DT75 of the pooled BA-vs-SNR fit (dB or a status string).

    Two keys per system keeps the lane within the 24-key budget with the audio-LLM rows
    added (7 systems x 2 + 4 datasets + 3 weights + synthetic = 22); ECE, DT50 and every
    breakdown are in plots/detect/*.csv.
    """
    out = {}
    for s in systems:
        m = next(r for r in results[s]["metrics"] if r["slice"] == "all")
        c = next(r for r in results[s]["curves"] if r["axis"] == "snr" and r["slice"] == "pooled")
        ba = m["bal_acc"]
        out[f"{s}.bal_acc"] = round(ba, 4) if math.isfinite(ba) else STATUS["undefined"]
        if c.get("status") != "ok":
            out[f"{s}.dt75_snr_db"] = STATUS["undefined"]
        elif c["dt75_status"] == "ok":
            out[f"{s}.dt75_snr_db"] = round(c["dt75"], 2)
        else:
            out[f"{s}.dt75_snr_db"] = _STATUS[c["dt75_status"]]
    return out


def pareto_front(rows: list[dict]) -> list[bool]:
    """For (latency_ms, bal_acc) rows: True where no other row is at least as fast AND as accurate (one strictly)."""
    out = []
    for r in rows:
        dominated = any(o is not r and o["latency_ms"] <= r["latency_ms"] and o["bal_acc"] >= r["bal_acc"]
                        and (o["latency_ms"] < r["latency_ms"] or o["bal_acc"] > r["bal_acc"]) for o in rows)
        out.append(not dominated)
    return out


def latency_rows(host: Path, systems: list[str], results: dict[str, dict]) -> list[dict]:
    """Mean/p95 latency per system that left `host/latency_<system>.csv`, with test BA and the Pareto flag."""
    rows = []
    for s in systems:
        f = host / f"latency_{s}.csv"
        if not f.is_file():
            continue
        r = summary(s, pl.read_csv(f))
        m = next(x for x in results[s]["metrics"] if x["slice"] == "all")
        rows.append({**r, "latency_ms": r["total_mean_ms"], "bal_acc": m["bal_acc"]})
    for r, p in zip(rows, pareto_front(rows)):
        r["pareto"] = p
    return rows
