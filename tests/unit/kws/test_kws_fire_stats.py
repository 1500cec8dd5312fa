"""Fire-rate, entropy and hierarchy-verdict functions on hand-built fire tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audioprobe.kws.fire_stats import (
    FireCounts,
    hierarchy_verdict,
    histogram_entropy,
    layer_stats,
    peak_layer,
    threshold_stats,
)


def _counts(fire: torch.Tensor, **kw) -> FireCounts:
    c = FireCounts(fire.shape[-1], **kw)
    c.update(fire)
    return c


def test_all_on_has_rate_one_and_zero_entropy():
    stats = layer_stats(_counts(torch.ones(3, 7, 5)))
    assert stats == {"fire_rate": 1.0, "always_on": 1.0, "selective": 0.0, "entropy": 0.0}


def test_uniform_over_ten_bins_has_entropy_log10():
    # one value at the centre of each of the 10 bins, per unit
    centres = (torch.arange(10, dtype=torch.float32) + 0.5) / 10
    fire = centres.view(1, 10, 1).expand(2, 10, 4)  # (B, T, U)
    c = _counts(fire)
    assert torch.allclose(c.unit_entropy(), torch.full((4,), math.log(10), dtype=torch.float64))
    assert layer_stats(c)["fire_rate"] == pytest.approx(0.5)  # 5 of 10 centres exceed 0.5


def test_bin_edges_match_numpy_histogram():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(997), [0.0, 0.1, 0.5, 0.9, 1.0]]).astype(np.float32)
    c = _counts(torch.from_numpy(values).view(1, -1, 1))
    expected, _ = np.histogram(values.astype(np.float64), bins=10, range=(0.0, 1.0))
    np.testing.assert_array_equal(c.hist[0].numpy(), expected)


def test_rates_fractions_and_streaming_updates():
    # unit 0 always fires, unit 1 fires 3 of 4 frames, unit 2 never (exactly 0.5 is not > 0.5)
    fire = torch.tensor([[[1.0, 0.9, 0.5], [1.0, 0.8, 0.1], [1.0, 0.7, 0.0], [1.0, 0.2, 0.5]]])  # (1, 4, 3)
    whole = _counts(fire)
    parts = FireCounts(3)
    parts.update(fire[:, :2])
    parts.update(fire[:, 2:])
    assert torch.equal(whole.unit_rates(), torch.tensor([1.0, 0.75, 0.0], dtype=torch.float64))
    assert torch.equal(whole.hist, parts.hist) and torch.equal(whole.above, parts.above)
    stats = layer_stats(whole)
    assert stats["fire_rate"] == pytest.approx(1.75 / 3)
    assert stats["always_on"] == pytest.approx(1 / 3)
    assert stats["selective"] == pytest.approx(1 / 3)


def test_two_equal_bins_entropy_log2():
    fire = torch.tensor([0.05, 0.95]).view(1, 2, 1)
    assert layer_stats(_counts(fire))["entropy"] == pytest.approx(math.log(2))
    assert histogram_entropy(torch.tensor([[0.0, 3.0, 0.0]]))[0] == 0.0


def test_wrong_unit_count_and_empty_counts_raise():
    c = FireCounts(4)
    with pytest.raises(ValueError):
        c.unit_rates()
    with pytest.raises(ValueError):
        c.update(torch.ones(1, 2, 3))


def test_threshold_stats():
    out = threshold_stats(torch.tensor([0.01, 0.03]))
    assert out["threshold_mean"] == pytest.approx(0.02)
    assert out["threshold_std"] == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("profile", "verdict"),
    [
        ([0.1, 0.2, 0.3, 0.4], "increasing"),
        ([0.1, 0.1, 0.3], "increasing"),
        ([0.4, 0.3, 0.3, 0.1], "decreasing"),
        ([0.110, 0.140, 0.098, 0.060], "none"),  # the origin's mid-layer peak
        ([0.0, 0.0, 0.0, 0.0], "flat"),  # base: fire ≡ 1
        ([0.5], "n/a"),
        ([0.2, 0.2 + 1e-9], "flat"),
    ],
)
def test_hierarchy_verdict(profile, verdict):
    assert hierarchy_verdict(profile) == verdict


def test_peak_layer():
    assert peak_layer([0.110, 0.140, 0.098, 0.060]) == 1
    with pytest.raises(ValueError):
        peak_layer([])
