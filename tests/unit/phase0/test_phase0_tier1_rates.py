"""Tier 1 common frame rate: mean pooling over whole groups, partial last group kept (hand values)."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.runtime.errors import ParamsError
from audioprobe.phase0.tier1.rates import pool_factor, pool_utterances, to_common_rate


def test_pool_factor_is_a_whole_ratio():
    assert pool_factor(75.0, 12.5) == 6
    assert pool_factor(50.0, 12.5) == 4
    assert pool_factor(12.5, 12.5) == 1
    assert pool_factor(75.0000004, 12.5) == 6  # within 1e-6


@pytest.mark.parametrize("native,common", [(75.0, 10.0), (12.5, 25.0), (75.0, 12.4)])
def test_pool_factor_rejects_fractional_or_upsampling_ratios(native, common):
    with pytest.raises(ParamsError, match=r"^params\.yaml: phase0\.tier1\.common_rate = ") as exc:
        pool_factor(native, common)
    assert "\n" not in str(exc.value)


def test_mean_pooling_hand_values_with_partial_last_group_kept():
    x = np.array([[0.0, 10.0], [2.0, 20.0], [4.0, 30.0], [6.0, 40.0], [8.0, 50.0]], dtype=np.float32)  # T=5, D=2
    got = to_common_rate(x, 37.5, 12.5)  # r = 3: groups [0,1,2], [3,4] (partial: 2 real frames)
    np.testing.assert_allclose(got, [[2.0, 20.0], [7.0, 45.0]])
    assert got.dtype == np.float32 and got.shape == (2, 2)  # ceil(5 / 3)


def test_whole_groups_and_identity():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_allclose(to_common_rate(x, 25.0, 12.5), [[1, 2], [5, 6], [9, 10]])
    assert to_common_rate(x, 12.5, 12.5) is x


def test_frame_count_matches_an_encoder_at_the_common_rate():
    # EnCodec: ceil(S / 320) frames at 75 Hz -> pooled by 6 -> ceil(S / 1920), Mimi's count.
    for s in (1, 319, 320, 1919, 1920, 1921, 24000 * 3 + 7):
        t = -(-s // 320)
        assert to_common_rate(np.zeros((t, 3)), 75.0, 12.5).shape[0] == -(-s // 1920)


def test_per_frame_scalars_mean_and_rms():
    e = np.array([3.0, 4.0, 0.0, 1.0, 1.0], dtype=np.float32)  # T = 5, r = 2
    np.testing.assert_allclose(to_common_rate(e, 25.0, 12.5), [3.5, 0.5, 1.0])
    rms = to_common_rate(e, 25.0, 12.5, reduce="rms")  # sqrt((9 + 16) / 2), sqrt(1 / 2), 1
    np.testing.assert_allclose(rms, [np.sqrt(12.5), np.sqrt(0.5), 1.0], rtol=1e-6)


def test_pool_utterances_never_crosses_a_boundary_and_equals_per_utterance():
    rng = np.random.default_rng(0)
    lengths = [5, 0, 6, 1, 13]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    x = rng.standard_normal((offsets[-1], 4)).astype(np.float32)
    got, new_off = pool_utterances(x, offsets, 75.0, 25.0)  # r = 3
    assert new_off.tolist() == [0, 2, 2, 4, 5, 10]
    for u in range(len(lengths)):
        want = to_common_rate(x[offsets[u] : offsets[u + 1]], 75.0, 25.0)
        np.testing.assert_allclose(got[new_off[u] : new_off[u + 1]], want, rtol=1e-6)
    # Hand value: utterance 3 is one frame alone (not averaged with its neighbours).
    np.testing.assert_allclose(got[4], x[11])
    e, e_off = pool_utterances(np.abs(x[:, 0]), offsets, 75.0, 25.0, reduce="rms")
    assert e.shape == (10,) and e_off.tolist() == new_off.tolist()
