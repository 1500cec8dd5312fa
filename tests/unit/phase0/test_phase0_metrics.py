"""phase0 metrics: equal to direct computation, exclusion bookkeeping, random control, confidence curve."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.bench.phase0 import split_data, synthetic_latents
from audioprobe.metrics.gaussian_entropy import entropy_reduction_samples
from audioprobe.metrics.variance_ratio import variance_ratio_samples
from audioprobe.phase0.conditioning import FitSettings, fit_and_assign, n_clusters
from audioprobe.phase0.evaluate import SLICES, Assignment, MetricSettings, confidence_bands, evaluate_lag
from audioprobe.phase0.summary import TABLE_METRICS, table_rows
from audioprobe.phase0.target import fit_delta_norm

FIT = FitSettings(mean_vq_k=12, pca_components=3, pca_vq_k=40, kmeans_n_init=2,
                  kmeans_fit_samples=3000, pca_fit_samples=3000, seed=11)


@pytest.fixture(scope="module")
def run():
    d = synthetic_latents(16000, 12, 24, seed=5)
    settings = MetricSettings(min_cluster_train_samples=150, min_speaker_samples=10)
    splits = split_data(d, settings.medial_pos_frac)
    _, _, asg = fit_and_assign(d.x, {s: v.rows for s, v in splits.items()}, 1, FIT)
    mean, std = fit_delta_norm(d.x, splits["train"].rows)
    assignments = {k: {s: Assignment(*v) for s, v in per.items()} for k, per in asg.items()}
    k = {s: n_clusters(s, FIT) for s in FIT.schemes}
    res = evaluate_lag(d.x, splits, assignments, k, mean, std, settings, 1)
    ys = {s: ((d.x[v.rows] - d.x[v.rows - 1]).astype(np.float64) - mean) / std for s, v in splits.items()}
    return d, settings, splits, assignments, k, res, ys, (mean, std)


def _effective(assignments, scheme, k, min_count):
    counts = np.bincount(assignments[scheme]["train"].labels, minlength=k[scheme])
    return counts >= min_count


def test_metrics_equal_direct_computation_for_every_split_and_slice(run):
    d, settings, splits, assignments, k, res, ys, _ = run
    for scheme in FIT.schemes:
        eff = _effective(assignments, scheme, k, settings.min_cluster_train_samples)
        tr = assignments[scheme]["train"].labels
        inc_tr = eff[tr]
        means = {c: ys["train"][inc_tr & (tr == c)].mean(axis=0) for c in np.flatnonzero(eff)}
        for split, sd in splits.items():
            lab = assignments[scheme][split].labels
            rnd = assignments[scheme][split].random_labels
            y = ys[split]
            for sl, flags in SLICES.items():
                got = res.metrics[scheme][split][sl]
                in_slice = np.isin(sd.flags, flags)
                m = in_slice & eff[lab]
                assert got["n"] == int(in_slice.sum()) and got["n_included"] == int(m.sum())
                if m.sum() < 2:
                    assert got["vr"] is None
                    continue
                assert abs(got["vr"] - variance_ratio_samples(y[m], lab[m])) < 1e-6
                tm = np.stack([means[c] for c in lab[m]])
                honest = ((y[m] - tm) ** 2).sum() / ((y[m] - y[m].mean(axis=0)) ** 2).sum()
                assert abs(got["vr_train_means"] - honest) < 1e-6
                mr = in_slice & eff[rnd]
                assert abs(got["random_vr"] - variance_ratio_samples(y[mr], rnd[mr])) < 1e-6
                ent = entropy_reduction_samples(y[m], lab[m])
                assert abs(got["entropy_h"] - ent["h"]) < 1e-4
                assert abs(got["entropy_h_cond"] - ent["h_cond"]) < 1e-3
            if split != "train":
                tr_vr = res.metrics[scheme]["train"]["all"]["vr"]
                ev = res.metrics[scheme][split]["all"]
                if tr_vr is not None and ev["vr"] is not None:
                    assert abs(ev["degradation"] - (ev["vr"] - tr_vr) / tr_vr) < 1e-12


def test_exclusion_uses_the_train_set_everywhere_and_is_identical_for_the_random_control(run):
    d, settings, splits, assignments, k, res, ys, _ = run
    partial = [s for s in FIT.schemes if 0 < _effective(assignments, s, k, settings.min_cluster_train_samples).sum()
               < np.count_nonzero(np.bincount(assignments[s]["train"].labels))]
    assert partial  # some scheme has clusters both kept and excluded
    scheme = partial[0]
    eff = _effective(assignments, scheme, k, settings.min_cluster_train_samples)
    assert res.metrics[scheme]["k_effective"] == int(eff.sum())
    for split, sd in splits.items():
        lab = assignments[scheme][split].labels
        rnd = assignments[scheme][split].random_labels
        for sl, flags in SLICES.items():
            got = res.metrics[scheme][split][sl]
            in_slice = np.isin(sd.flags, flags)
            expect = 1.0 - eff[lab][in_slice].mean()
            assert abs(got["excluded_mass"] - expect) < 1e-12
            assert got["excluded_flag"] == (expect > settings.excluded_mass_flag)
        # permuting within the split moves ids, never the included mass
        assert eff[rnd].sum() == eff[lab].sum()


def test_random_control_is_close_to_one_and_to_its_permutation_null(run):
    d, settings, splits, assignments, k, res, ys, _ = run
    for scheme in ("mean_vq64", "pca8_vq256"):
        for split in ("train", "eval"):
            got = res.metrics[scheme][split]["all"]
            assert abs(got["random_vr"] - 1.0) <= 0.05
            assert abs(got["random_vr"] - got["random_vr_expected"]) <= 0.02
            assert got["random_vr_expected"] < 1.0


def test_per_speaker_vr_matches_a_direct_computation(run):
    d, settings, splits, assignments, k, res, ys, _ = run
    scheme = "mean_vq64"
    eff = _effective(assignments, scheme, k, settings.min_cluster_train_samples)
    sd = splits["eval"]
    lab = assignments[scheme]["eval"].labels
    rows = [r for r in res.speakers if r["scheme"] == scheme and r["split"] == "eval"]
    assert rows and len(rows) == res.metrics[scheme]["eval"]["all"]["n_speakers"]
    for r in rows:
        code = sd.speaker_names.index(r["speaker"])
        m = (sd.speakers == code) & eff[lab]
        assert r["n"] == int(m.sum()) >= settings.min_speaker_samples
        assert abs(r["vr"] - variance_ratio_samples(ys["eval"][m], lab[m])) < 1e-6
    vals = np.array([r["vr"] for r in rows])
    assert abs(res.metrics[scheme]["eval"]["all"]["speaker_vr_mean"] - vals.mean()) < 1e-12


def test_confidence_curve_bookkeeping_is_monotone_and_nested(run):
    d, settings, splits, assignments, k, res, ys, _ = run
    for scheme in FIT.schemes:
        for split in splits:
            curve = [r for r in res.curve if r["scheme"] == scheme and r["split"] == split]
            assert [r["keep_pct"] for r in curve] == list(settings.confidence_keep_pct)
            kept = [r["n_kept"] for r in curve]
            assert kept == sorted(kept) and kept[-1] == res.metrics[scheme][split]["all"]["n_included"]
            thr = [r["distance_threshold"] for r in curve if r["distance_threshold"] is not None]
            assert thr == sorted(thr)
            full = res.metrics[scheme][split]["all"]
            if full["vr"] is not None:
                assert abs(curve[-1]["vr"] - full["vr"]) < 1e-9
                assert abs(curve[-1]["vr_train_means"] - full["vr_train_means"]) < 1e-9
    dist = np.array([0.5, 0.1, 0.9, 0.3, 0.3, 2.0, 0.05])
    inc = np.array([True, True, True, True, True, False, True])
    bands, n_keep, thr = confidence_bands(dist, inc, (50, 100))
    np.testing.assert_array_equal(n_keep, [3, 6])
    assert bands[5] == -1  # excluded
    top = set(np.flatnonzero(bands == 0))
    assert top == {1, 6, 3}  # the 3 smallest distances; the tie at 0.3 broken by position
    assert thr[0] == 0.3 and thr[1] == 0.9
    with pytest.raises(ValueError):
        confidence_bands(dist, inc, (50, 90))


def test_an_all_excluded_scheme_has_no_vr_and_is_flagged(run):
    d, _, splits, assignments, k, _, _, (mean, std) = run
    settings = MetricSettings(min_cluster_train_samples=10**9)
    res = evaluate_lag(d.x, splits, assignments, k, mean, std, settings, 1)
    for scheme in FIT.schemes:
        got = res.metrics[scheme]["eval"]["all"]
        assert got["n_included"] == 0 and got["excluded_mass"] == 1.0 and got["excluded_flag"]
        assert got["vr"] is None and got["random_vr"] is None and got["degradation"] is None
    rows = table_rows(1, res.metrics)
    assert len(rows) == len(FIT.schemes) * len(splits) * len(SLICES)  # an excluded scheme keeps its rows
    row = next(r for r in rows if (r["scheme"], r["split"], r["slice"]) == ("mean_vq64", "eval", "all"))
    assert row["vr"] is None and row["excluded_mass"] == 1.0 and set(row) >= set(TABLE_METRICS)
    assert all(v is None or v == v for r in rows for v in r.values())  # blank, never NaN
