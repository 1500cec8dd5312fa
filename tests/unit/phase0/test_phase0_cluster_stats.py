"""Grouped sums of the phase0 statistics pass: known answers, and bit-identity with the CSR product they replace."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from audioprobe.phase0.cluster_stats import group_sum_f64, group_sum_into


def test_group_sums_known_answer_touch_only_the_groups_present():
    y = np.array([[1, 10], [2, 20], [4, 40], [8, 80]], dtype=np.float32)
    acc = np.full((4, 2), 100.0, dtype=np.float32)
    group_sum_into(acc, np.array([3, 0, 3]), y, rows=np.array([0, 2, 3]))  # rows 0 and 3 -> group 3, row 2 -> 0
    np.testing.assert_array_equal(acc, [[104, 140], [100, 100], [100, 100], [109, 190]])
    group_sum_into(acc, np.array([], dtype=np.int64), y, rows=np.array([], dtype=np.int64))  # nothing to add
    group_sum_into(acc, np.array([1, 1, 1, 1]), y)  # rows default: all of y, in order
    np.testing.assert_array_equal(acc[1], [115, 250])


def test_group_sum_f64_sums_in_float64():
    # 1e8 + 1 - 1e8 is 0 in float32 arithmetic and 1 in float64.
    y = np.array([[1e8], [1.0], [-1e8]], dtype=np.float32)
    acc32 = np.zeros((1, 1), dtype=np.float32)
    group_sum_into(acc32, np.zeros(3, dtype=np.int64), y)
    acc64 = np.zeros((1, 1))
    group_sum_f64(acc64, np.zeros(3, dtype=np.int64), y, chunk=2)
    assert acc32[0, 0] == 0.0 and acc64[0, 0] == 1.0


def _csr_reference(acc, keys, y, rows=None):
    """The scipy one-hot product the statistics pass used before (the committed outputs came from it)."""
    cols = np.arange(keys.size) if rows is None else np.asarray(rows)
    uniq, inv = np.unique(keys, return_inverse=True)
    onehot = sp.csr_matrix((np.ones(keys.size, dtype=y.dtype), (inv, cols)), shape=(uniq.size, y.shape[0]))
    acc[uniq] += onehot @ y


@pytest.mark.parametrize("groups", [3, 1024, 50_000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_sums_are_bit_identical_to_the_csr_product(groups, dtype):
    rng = np.random.default_rng(groups)
    y = (rng.standard_normal((4096, 96)) * rng.uniform(0.1, 100.0, 96)).astype(dtype)
    rows = np.sort(rng.choice(y.shape[0], 3000, replace=False))
    keys = rng.integers(0, groups, rows.size)
    ours = np.zeros((groups, y.shape[1]), dtype=dtype)
    ref = ours.copy()
    for _ in range(2):  # accumulates across calls, as across blocks
        group_sum_into(ours, keys, y, rows)
        _csr_reference(ref, keys, y, rows)
    assert np.array_equal(ours, ref)
    # and the sums are the sums (not only the same rounding as the reference)
    exact = np.zeros((groups, y.shape[1]))
    np.add.at(exact, keys, y[rows].astype(np.float64))
    np.testing.assert_allclose(ours, 2 * exact, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-2)
