"""The params' k-means settings against the spec's reference (n_init 10, max_iter 100) on real frames.

On the real LibriSpeech fixture (mel, ~15 k train contexts) VR and entropy depend on which
local optimum k-means lands in: reseeding the reference itself moves VR by up to ~0.08 and
the entropy reduction by up to ~0.3 nats (pca8_vq256, held-out split: 1.7 k samples). A
bar of 0.002 is below that noise for any fit that is not the reference itself, so the bar
here is the reference's own seed spread, measured in the same test: the chosen fit must not
move any VR or entropy figure further from the reference than reseeding the reference does
(max over lags, schemes and splits, with 25 % slack), and its median move must stay at or
under 0.004 (VR) and 0.01 nats (entropy). Figures: lane README, "Cost".
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from audioprobe.bench.phase0 import encode_fixture, inputs_from, run_phase0
from audioprobe.phase0.conditioning import KMEANS_REFERENCE, FitSettings
from audioprobe.phase0.evaluate import MetricSettings
from audioprobe.runtime import params

REPO = Path(__file__).resolve().parents[3]
KEYS = ("vr", "entropy_reduction_nats")


def _moves(a: dict, b: dict) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {k: [] for k in KEYS}
    for lag, per in a.items():
        for scheme, rows in per.items():
            for split in ("train", "heldout", "eval"):
                for key in KEYS:
                    u, v = rows[split]["all"][key], b[lag][scheme][split]["all"][key]
                    assert (u is None) == (v is None), (lag, scheme, split, key)
                    if u is not None:
                        out[key].append(abs(u - v))
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.slow
def test_chosen_kmeans_moves_metrics_no_more_than_reseeding_the_reference(fixtures_dir):
    real = encode_fixture(fixtures_dir / "LibriSpeech")
    data = inputs_from(real, seed=42)
    lags = list(params.load_group("phase0.context", REPO / "params.yaml").lags)
    chosen = FitSettings.from_params(params.load_group("phase0.context", REPO / "params.yaml"),
                                     params.load_group("phase0.conditioning", REPO / "params.yaml"), 42)
    assert chosen != replace(chosen, **KMEANS_REFERENCE), "params.yaml runs the reference itself"
    runs = {name: run_phase0(data, lags, fit, MetricSettings())["metrics"] for name, fit in (
        ("reference", replace(chosen, **KMEANS_REFERENCE)),
        ("reference_seed43", replace(chosen, **KMEANS_REFERENCE, seed=43)),
        ("chosen", chosen))}
    noise = _moves(runs["reference"], runs["reference_seed43"])
    moved = _moves(runs["reference"], runs["chosen"])
    report = {k: {"chosen_max": float(moved[k].max()), "chosen_median": float(np.median(moved[k])),
                  "reseed_max": float(noise[k].max()), "reseed_median": float(np.median(noise[k]))} for k in KEYS}
    print(report)
    for key, median_cap in (("vr", 0.004), ("entropy_reduction_nats", 0.01)):
        assert moved[key].max() <= 1.25 * noise[key].max(), report
        assert np.median(moved[key]) <= median_cap, report
