"""detect headline values (stable keys, censored statuses), Pareto front, latency summary, key budget."""

from __future__ import annotations

import polars as pl
import pytest

from audioprobe.detect.latency import summary
from audioprobe.detect.report import headline_values, pareto_front
from audioprobe.runtime.headline import MAX_KEYS, headline


def _result(ba, status="ok", dt75=3.21):
    return {"metrics": [{"slice": "all", "bal_acc": ba}],
            "curves": [{"axis": "snr", "slice": "pooled", "status": "ok", "dt75_status": status, "dt75": dt75}]}


def test_headline_values_use_status_strings_for_censored_thresholds():
    res = {"a": _result(0.91234), "b": _result(0.6, "censored-high", float("nan")),
           "c": _result(0.8, "censored-low", float("nan"))}
    v = headline_values(res, ["a", "b", "c"])
    assert v == {"a.bal_acc": 0.9123, "a.dt75_snr_db": 3.21, "b.bal_acc": 0.6, "b.dt75_snr_db": "censored-high",
                 "c.bal_acc": 0.8, "c.dt75_snr_db": "censored-low"}


def test_seven_systems_fit_the_key_budget():
    names = ["webrtc", "silero", "energy", "base_hand", "base_opro", "lora_hand", "lora_opro"]
    v = headline_values({n: _result(0.7) for n in names}, names)
    data = {d: {"source": "embedded", "sha256": "0" * 64} for d in ("esc50", "librispeech", "musan", "speech_commands")}
    weights = {w: {"source": "random-init", "sha256": None} for w in ("silero", "qwen2audio", "lora")}
    assert len(headline("detect", v, data, weights)) == 22 <= MAX_KEYS


def test_pareto_front():
    rows = [{"latency_ms": 1.0, "bal_acc": 0.6}, {"latency_ms": 2.0, "bal_acc": 0.5},
            {"latency_ms": 30.0, "bal_acc": 0.85}, {"latency_ms": 30.0, "bal_acc": 0.85}]
    assert pareto_front(rows) == [True, False, True, True]


def test_latency_summary():
    t = pl.DataFrame({"load_ms": [1.0, 1.0], "features_ms": [0.0, 2.0], "model_ms": [1.0, 1.0], "post_ms": [0.0, 0.0]})
    s = summary("x", t)
    assert s["total_mean_ms"] == pytest.approx(3.0) and s["features_mean_ms"] == pytest.approx(1.0)
    assert s["n"] == 2 and s["total_p95_ms"] == pytest.approx(3.9)


def test_report_does_not_import_evaluate():
    """report.py owns the Pareto front of its latency rows; it needs nothing from the evaluation protocol."""
    import ast
    from pathlib import Path

    import audioprobe.detect.report as report

    tree = ast.parse(Path(report.__file__).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "audioprobe.detect.evaluate" not in modules
