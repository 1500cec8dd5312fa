"""Conditioning fits: seeded reproducibility, no leakage from eval speakers, canonical PCA, bins."""

from __future__ import annotations

import numpy as np
import pytest

from audioprobe.bench.phase0 import split_data, synthetic_latents
from audioprobe.runtime.errors import DataError
from audioprobe.phase0.conditioning import (
    FitSettings,
    canonical_components,
    fit_and_assign,
    fit_lag,
    n_clusters,
    nearest,
    permute_labels,
    quartile_ids,
)
from audioprobe.phase0.evaluate import Assignment, MetricSettings, evaluate_lag
from audioprobe.phase0.summary import table_rows
from audioprobe.phase0.target import fit_delta_norm

SMALL = FitSettings(mean_vq_k=8, pca_components=3, pca_vq_k=16, kmeans_n_init=2,
                    kmeans_fit_samples=1500, pca_fit_samples=2000, seed=7)
METRICS = MetricSettings(min_cluster_train_samples=20)


@pytest.fixture(scope="module")
def data():
    return synthetic_latents(8000, 16, 20, seed=3)


def _run(d, settings: FitSettings, lag: int = 1):
    splits = split_data(d, METRICS.medial_pos_frac)
    tensors, info, asg = fit_and_assign(d.x, {s: v.rows for s, v in splits.items()}, lag, settings)
    mean, std = fit_delta_norm(d.x, splits["train"].rows)
    res = evaluate_lag(d.x, splits, {k: {s: Assignment(*v) for s, v in per.items()} for k, per in asg.items()},
                       {s: n_clusters(s, settings) for s in settings.schemes}, mean, std, METRICS, lag)
    return tensors, info, asg, res


def test_same_seed_gives_identical_centroids_assignments_and_metrics(data):
    t1, i1, a1, r1 = _run(data, SMALL)
    t2, i2, a2, r2 = _run(data, SMALL)
    assert set(t1) == set(t2) >= {"mean_vq64.centroids", "pca.components", "pca8_vq256.centroids",
                                  "pca8_quartile.edges"}
    for k in t1:
        np.testing.assert_array_equal(t1[k], t2[k], err_msg=k)
    for scheme in a1:
        for split in a1[scheme]:
            for u, v in zip(a1[scheme][split], a2[scheme][split], strict=False):
                np.testing.assert_array_equal(u, v)
    assert table_rows(1, r1.metrics) == table_rows(1, r2.metrics)
    assert i1 == i2  # fit.json content: no timings, nothing that differs between runs
    assert "seconds" not in i1 and i1["kmeans_fit_samples"] == 1500 and i1["pca"]["fit_samples"] == 2000
    # another seed really is another fit
    t3, *_ = _run(data, FitSettings(**{**SMALL.__dict__, "seed": 8}))
    assert not np.array_equal(t1["mean_vq64.centroids"], t3["mean_vq64.centroids"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # poisoned eval rows overflow, as they should
@pytest.mark.parametrize("poison", [np.nan, 1e30])
def test_fits_never_see_eval_or_heldout_speakers(data, poison):
    splits = split_data(data, METRICS.medial_pos_frac)
    rows = {s: v.rows for s, v in splits.items()}
    clean_t, _ = fit_lag(data.x, rows["train"], 2, SMALL)
    clean_norm = fit_delta_norm(data.x, rows["train"])
    _, _, clean_asg = fit_and_assign(data.x, rows, 2, SMALL)
    # Poison every frame of every utterance that holds a held-out or eval target.
    x = data.x.copy()
    off = data.utt_offsets
    for split in ("heldout", "eval"):
        for u in np.unique(np.searchsorted(off, rows[split], side="right") - 1):
            x[off[u]:off[u + 1]] = poison
    assert not np.isfinite(x).all() or np.abs(x).max() >= 1e30
    t, _ = fit_lag(x, rows["train"], 2, SMALL)
    for k in clean_t:
        np.testing.assert_array_equal(t[k], clean_t[k], err_msg=k)
    for a, b in zip(fit_delta_norm(x, rows["train"]), clean_norm, strict=False):
        np.testing.assert_array_equal(a, b)
    _, _, asg = fit_and_assign(x, rows, 2, SMALL)
    for scheme in asg:
        np.testing.assert_array_equal(asg[scheme]["train"][0], clean_asg[scheme]["train"][0])
        np.testing.assert_array_equal(asg[scheme]["train"][2], clean_asg[scheme]["train"][2])


def test_pca_components_have_a_fixed_order_and_sign():
    comp = np.array([[0.1, -0.9, 0.2], [0.6, 0.1, -0.7], [-0.5, 0.6, 0.1]])
    var = np.array([1.0, 3.0, 2.0])
    c, v = canonical_components(comp, var)
    np.testing.assert_array_equal(v, [3.0, 2.0, 1.0])
    np.testing.assert_allclose(c, [[-0.6, -0.1, 0.7], [-0.5, 0.6, 0.1], [-0.1, 0.9, -0.2]])
    assert (c[np.arange(3), np.argmax(np.abs(c), axis=1)] > 0).all()
    c2, _ = canonical_components(-comp, var)  # a sign flip of the solver changes nothing
    np.testing.assert_allclose(c2, c)


def test_quartile_bins_and_nearest_centroid():
    edges = np.array([[-1.0, 0.0, 1.0], [10.0, 20.0, 30.0]])
    scores = np.array([[-2.0, 5.0], [0.0, 25.0], [0.5, 31.0], [1.5, 20.0]])
    # q_j = number of edges <= score (a score on an edge goes up); id = q_0 + 4·q_1
    np.testing.assert_array_equal(quartile_ids(scores, edges), [0 + 4 * 0, 2 + 4 * 2, 2 + 4 * 3, 3 + 4 * 2])
    rng = np.random.default_rng(0)
    p, c = rng.standard_normal((50, 5)), rng.standard_normal((7, 5))
    lab, dist = nearest(p, c)
    d = np.linalg.norm(p[:, None] - c[None], axis=2)
    np.testing.assert_array_equal(lab, d.argmin(axis=1))
    np.testing.assert_allclose(dist, d.min(axis=1), rtol=1e-4)


def test_random_control_keeps_the_size_histogram():
    labels = np.random.default_rng(0).integers(0, 9, 500).astype(np.int32)
    r = permute_labels(labels, 42, 1, "mean_vq64", "eval")
    np.testing.assert_array_equal(np.bincount(r, minlength=9), np.bincount(labels, minlength=9))
    assert not np.array_equal(r, labels)
    np.testing.assert_array_equal(r, permute_labels(labels, 42, 1, "mean_vq64", "eval"))
    assert not np.array_equal(r, permute_labels(labels, 42, 1, "mean_vq64", "train"))


def test_too_few_train_contexts_is_a_clear_error(data):
    rows = split_data(data, METRICS.medial_pos_frac)["train"].rows[:30]
    with pytest.raises(DataError, match="K=64 needs at least 64"):
        fit_lag(data.x, rows, 1, FitSettings(schemes=("mean_vq64",)))


def test_two_runs_of_the_stage_write_byte_identical_outputs(data, tmp_path):
    """conditioning_fit's folder (fit.json included) holds no timings: two runs, same bytes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import polars as pl
    import yaml

    repo = Path(__file__).resolve().parents[3]
    from audioprobe.encoders.store import write_arrays

    write_arrays(tmp_path / "latents", data.x, data.utt_offsets, {"name": "synthetic"})
    splits = split_data(data, METRICS.medial_pos_frac)
    frames = pl.DataFrame({
        "row": np.concatenate([splits[s].rows for s in splits]),
        "split": np.concatenate([[s] * splits[s].rows.size for s in splits]),
    })
    frames.write_parquet(tmp_path / "frames.parquet")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"phase0": {
        "context": {"window": 4, "lags": [1, 2]},
        "conditioning": {"mean_vq_k": 8, "pca_components": 3, "pca_vq_k": 16, "kmeans_n_init": 2,
                         "kmeans_fit_samples": 1500, "pca_fit_samples": 2000},
    }}))
    env = {**os.environ, "PYTHONPATH": f"{repo / 'lib'}{os.pathsep}{repo}"}
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        proc = subprocess.run(
            [sys.executable, "-m", "stages.phase0_conditioning", "--latents", str(tmp_path / "latents"),
             "--frames", str(tmp_path / "frames.parquet"), "--out", str(out), "--seed", "5",
             "--params", str(tmp_path / "params.yaml")],
            cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "wall s:" in proc.stdout  # timings are printed...
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir()) and "fit.json" in names
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name  # ...never written
    assert "seconds" not in (outs[0] / "fit.json").read_text()
