"""bench.tier1: dev NLL after every pass, the 'flat' rule on known curves, one JSON last line (synthetic, seconds)."""

from __future__ import annotations

import json

import numpy as np
import torch
from audioprobe.bench.tier1 import (
    PassProbe,
    app,
    flat_at_pass,
    prepare,
    run_setting,
    speaker_split,
    synthetic_frames,
)
from audioprobe.phase0.tier1.train import TrainConfig, build_model, train
from typer.testing import CliRunner


def test_flat_at_pass_known_answers():
    # pass 2 (9.0): the next two passes (8.99, 8.985) improve by 0.015 < 0.5 % of 9.0
    assert flat_at_pass([10.0, 9.0, 8.99, 8.985, 8.98], rel_tol=0.005, patience=2) == 2
    # still improving by > 0.5 % every pass: never flat
    assert flat_at_pass([10.0, 9.0, 8.0, 7.0, 6.0], rel_tol=0.005, patience=2) is None
    # a rise (over-fitting) is flat: best at pass 3, passes 4 and 5 are worse
    assert flat_at_pass([10.0, 9.0, 8.0, 8.2, 8.5], rel_tol=0.005, patience=2) == 3
    # one bad pass then a real improvement is not flat (patience 2 looks at the best of the next two)
    assert flat_at_pass([10.0, 9.0, 9.1, 8.0, 7.9, 7.89, 7.88], rel_tol=0.005, patience=2) == 5
    # negative NLLs: relative to |best|
    assert flat_at_pass([-1.0, -2.0, -2.001, -2.002], rel_tol=0.005, patience=2) == 2
    # too few passes after the last improvement to tell
    assert flat_at_pass([10.0, 9.0, 8.0], rel_tol=0.005, patience=2) is None


def test_speaker_split_holds_out_whole_speakers():
    spk = np.array([0, 0, 1, 2, 2, 3, 4, 5])
    dev = speaker_split(spk, np.full(spk.size, 100), 0.25, seed=0)
    assert set(spk[dev]).isdisjoint(set(spk[~dev]))
    assert dev.sum() * 100 >= 0.25 * 800 and (~dev).any()


def test_pass_probe_trains_exactly_like_the_bare_model():
    data = prepare(synthetic_frames(6, 40, 4, 3), window=2, max_lag=2, dev_fraction=0.3, seed=0)
    cfg = TrainConfig(epochs=3.0, batch_size=16, lr=1e-3, seed=0)
    torch.manual_seed(0)
    bare = build_model("mdn", 2 * data.dim, data.dim, 8, 2)
    torch.manual_seed(0)
    wrapped = build_model("mdn", 2 * data.dim, data.dim, 8, 2)
    seen = []
    probe = PassProbe(wrapped, data.train.size, seen.append)
    h1 = train(bare, data.x, data.train, 1, 2, cfg)
    h2 = train(probe, data.x, data.train, 1, 2, cfg)
    probe.finish()
    assert seen == [1, 2, 3]
    assert h1 == h2
    for a, b in zip(bare.state_dict().values(), wrapped.state_dict().values()):
        assert torch.equal(a, b)


def test_run_setting_gives_one_dev_nll_per_pass():
    data = prepare(synthetic_frames(8, 40, 4, 4), window=2, max_lag=2, dev_fraction=0.25, seed=0)
    for family in ("vmf", "mdn"):
        r = run_setting(family, data, k=1, window=2, hidden=8, components=2,
                        cfg=TrainConfig(batch_size=32, seed=0), passes=3)
        assert len(r["dev_nll_per_pass"]) == 3 and len(r["train_loss_per_pass"]) == 3
        assert all(np.isfinite(r["dev_nll_per_pass"]))
        assert r["train_samples_visited"] == 3 * data.train.size and r["s_per_million_frames"] > 0
        assert r["flat_at_pass"] == flat_at_pass(r["dev_nll_per_pass"])


def test_cli_prints_a_table_and_ends_with_one_json_line():
    out = CliRunner().invoke(app, ["--synthetic", "6", "--passes", "3", "--hidden", "8", "--components", "2",
                                   "--window", "2", "--lags", "1,2", "--batch-sizes", "16,64", "--long-lag-batches", "16"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary["results"]) == {"vmf_b16_k1", "vmf_b16_k2", "vmf_b64_k1",
                                       "mdn_b16_k1", "mdn_b16_k2", "mdn_b64_k1"}
    for r in summary["results"].values():
        assert len(r["dev_nll_per_pass"]) == 3 and "flat_at_pass" in r and r["s_per_million_frames"] > 0
    assert summary["peak_rss_mb"] > 0
    assert any(ln.startswith("| family |") for ln in lines)
