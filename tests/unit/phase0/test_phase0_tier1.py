"""phase0 Tier 1: samples, MDN, baselines, metrics, injection modes, checkpoints, headline (hand-built answers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from audioprobe.runtime.headline import MAX_KEYS, headline
from audioprobe.phase0.speaker_split import SpeakerSplit
from audioprobe.phase0.tier1 import compare, evaluate, injection, samples, train
from audioprobe.phase0.tier1.mdn import GaussianBaseline, MdnNet, mixture_nll
from audioprobe.phase0.tier1.vmf import VmfBaseline, fit_lognormal


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ samples
def _series(lengths, speakers, dim=2):
    """Frames x[i] = (i, 10·i) for the concatenation: every row says where it came from."""
    n = sum(lengths)
    x = np.stack([np.arange(n), 10 * np.arange(n)], 1)[:, :dim].astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return samples.Series(x, offsets, [f"u{i}" for i in range(len(lengths))], speakers, 12.5)


def test_targets_never_cross_utterances_and_every_k_uses_the_same_targets():
    s = _series([20, 12, 5], ["a", "b", "c"])
    t = samples.target_rows(s.offsets, np.array([True, True, True]), window=3, max_lag=4)
    # first target per utterance at offset + W − 1 + max_lag = offset + 6; the 5-frame one has none
    assert t.tolist() == list(range(6, 20)) + list(range(26, 32))
    for k in (1, 2, 4):
        rows = samples.context_rows(t, k, 3)
        utt_of = np.searchsorted(s.offsets, rows, side="right") - 1
        assert (utt_of == (np.searchsorted(s.offsets, t, side="right") - 1)[:, None]).all()
        assert (rows[:, -1] == t - k).all() and (np.diff(rows, axis=1) == 1).all()  # W frames ending k back
        assert (t - 1 >= s.offsets[np.searchsorted(s.offsets, t, side="right") - 1]).all()


def test_gather_builds_the_flattened_context_and_the_one_step_delta():
    s = _series([30], ["a"])
    x = torch.as_tensor(s.x)
    ctx, delta = samples.gather(x, np.array([10, 20]), k=2, window=3)
    # t = 10, k = 2, W = 3: rows 6, 7, 8, flattened (W·D)
    assert ctx[0].tolist() == [6, 60, 7, 70, 8, 80]
    assert ctx[1].tolist() == [16, 160, 17, 170, 18, 180]
    assert delta.tolist() == [[1, 10], [1, 10]]  # x_t − x_{t−1}


def test_eval_sample_covers_every_eval_speaker_with_a_cap():
    t = np.arange(1000)
    spk = np.array(["big"] * 900 + ["mid"] * 90 + ["tiny"] * 10, dtype=object)
    ev = samples.eval_sample(t, spk, per_speaker=50, seed=0)
    got = dict(zip(*np.unique(spk[ev], return_counts=True)))
    assert got == {"big": 50, "mid": 50, "tiny": 10}
    assert (np.diff(ev) > 0).all()
    # a prefix of the same size (the origin's way) would have seen one speaker only
    assert set(spk[: ev.size]) == {"big"}
    assert np.array_equal(ev, samples.eval_sample(t, spk, 50, seed=0))


def test_shuffle_is_global_and_seeded():
    n, per = 1000, 100  # speaker-grouped input: speaker = row // 100
    p0, p1 = samples.global_shuffle(n, 7, 0), samples.global_shuffle(n, 7, 1)
    assert sorted(p0.tolist()) == list(range(n))
    assert np.array_equal(p0, samples.global_shuffle(n, 7, 0)) and not np.array_equal(p0, p1)
    first_batch = p0[:64] // per
    assert len(set(first_batch.tolist())) >= 8  # a buffer over grouped data would show 1-2 speakers
    # positions are uncorrelated with the input order
    assert abs(np.corrcoef(np.arange(n), p0)[0, 1]) < 0.1


def test_split_masks_use_train_and_eval_utterances_and_name_missing_speakers():
    s = _series([20, 20, 20, 20], ["a", "a", "b", "c"])
    split = SpeakerSplit(train_speakers=["a", "b"], eval_speakers=["c"], train_utts=["u0", "u2"],
                         heldout_utts=["u1"], eval_utts=["u3"])
    tr, ev = samples.split_masks(s, split)
    assert tr.tolist() == [True, False, True, False] and ev.tolist() == [False, False, False, True]
    bad = SpeakerSplit(train_speakers=["a", "b"], eval_speakers=["c", "d"], train_utts=["u0", "u2"],
                       heldout_utts=["u1"], eval_utts=["u3"])
    with pytest.raises(Exception, match="eval speakers without utterances.*'d'"):
        samples.split_masks(s, bad)


def test_build_samples_standardises_with_train_frames_only():
    rng = np.random.default_rng(0)
    s = _series([40, 40, 40], ["a", "b", "c"])
    s.x = rng.standard_normal(s.x.shape).astype(np.float32)
    s.x[80:] += 100.0  # eval utterance far away: must not move the train statistics
    split = SpeakerSplit(["a", "b"], ["c"], ["u0", "u1"], [], ["u2"])
    ss = samples.build_samples(s, split, window=4, lags=[1, 2], per_speaker=10, seed=0)
    np.testing.assert_allclose(ss.mean, s.x[:80].astype(np.float64).mean(0), rtol=1e-6)
    assert abs(ss.series.x[:80].mean()) < 1e-5 and ss.eval.size == 10 and ss.eval_speakers == ["c"]
    assert ss.train.min() == 5 and ss.eval.min() >= 85  # t >= offset + W − 1 + max lag


# ------------------------------------------------------------------ MDN and baselines
def test_mixture_nll_equals_scipy_on_hand_values():
    delta = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64)
    w = np.array([0.25, 0.75])
    means = np.array([[0.0, -1.0], [1.5, 0.0]])
    scales = np.array([[0.5, 2.0], [1.0, 0.3]])
    logits = torch.tensor(np.log(w))[None].repeat(2, 1)
    got = mixture_nll(delta, logits, torch.tensor(means)[None].repeat(2, 1, 1), torch.tensor(scales)[None].repeat(2, 1, 1))
    ref = [-np.log(sum(w[c] * st.multivariate_normal(means[c], np.diag(scales[c] ** 2)).pdf(d) for c in range(2)))
           for d in delta.numpy()]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


def test_mdn_recovers_a_known_two_component_mixture():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, w = 6000, 0.3
    comp = rng.random(n) < w
    mu = np.where(comp[:, None], [-2.0, 1.0], [1.5, -0.5])
    sd = np.where(comp[:, None], [0.3, 0.5], [0.6, 0.2])
    delta = torch.tensor(mu + sd * rng.standard_normal((n, 2)), dtype=torch.float32)
    net = MdnNet(1, 2, hidden=8, components=2)
    base = GaussianBaseline.fit(delta.numpy())
    net.init_marginal(base.mean, base.std, seed=1)
    ctx = torch.ones(n, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        net.nll(ctx, delta).mean().backward()
        opt.step()
    with torch.no_grad():
        logits, means, scales = net(ctx[:1])
    pi = torch.softmax(logits, -1)[0].numpy()
    small = int(np.argmin(pi))
    assert abs(pi[small] - w) < 0.03
    np.testing.assert_allclose(means[0, small].numpy(), [-2.0, 1.0], atol=0.05)
    np.testing.assert_allclose(scales[0, small].numpy(), [0.3, 0.5], rtol=0.1)
    np.testing.assert_allclose(means[0, 1 - small].numpy(), [1.5, -0.5], atol=0.05)
    np.testing.assert_allclose(scales[0, 1 - small].numpy(), [0.6, 0.2], rtol=0.1)
    # the mixture beats the one-Gaussian baseline; its point is the mixture mean
    with torch.no_grad():
        assert float((net.nll(ctx, delta) - base.nll(delta)).mean()) < -0.3
        np.testing.assert_allclose(net.point(ctx[:1])[0].numpy(), pi @ means[0].numpy(), rtol=1e-5)


def test_baselines_fit_their_train_data():
    rng = np.random.default_rng(1)
    d = rng.standard_normal((5000, 3)) * [1.0, 2.0, 0.5] + [0.1, -0.2, 0.3]
    g = GaussianBaseline.fit(d)
    np.testing.assert_allclose(g.mean, d.mean(0)) and np.testing.assert_allclose(g.std, d.std(0))
    ref = -st.norm(g.mean, g.std).logpdf(d[:5]).sum(1)
    np.testing.assert_allclose(g.nll(torch.tensor(d[:5])).numpy(), ref, rtol=1e-10)
    v = VmfBaseline.fit(d)
    logm = np.log(np.linalg.norm(d, axis=1))
    assert (v.mu_logm, v.sigma) == fit_lognormal(d) and abs(v.mu_logm - logm.mean()) < 1e-12


def test_mdn_starts_at_its_baseline():
    rng = np.random.default_rng(2)
    d = rng.standard_normal((500, 4)) * 0.7
    base = GaussianBaseline.fit(d)
    net = MdnNet(6, 4, hidden=16, components=8)
    net.init_marginal(base.mean, base.std)
    with torch.no_grad():
        gap = (net.nll(torch.randn(500, 6), torch.tensor(d, dtype=torch.float32)) - base.nll(torch.tensor(d))).mean()
    assert abs(float(gap)) < 0.05  # sensible from step 0, not worse than the marginal by nats


# ------------------------------------------------------------------ metrics
def test_summaries_per_dim_and_trimmed_mean_on_hand_values():
    v = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    assert evaluate.summarise(v, 0.2) == {"mean": 22.0, "median": 3.0, "trim": 3.0}
    assert evaluate.trimmed_mean(v, 0.19) == 22.0  # int(0.19 * 5) = 0: nothing cut


@pytest.mark.parametrize("n, trim", [(1, 0.1), (7, 0.1), (10, 0.1), (999, 0.25), (1000, 0.0), (33, 0.49)])
def test_trimmed_mean_follows_scipy_trim_mean(n, trim):
    from scipy.stats import trim_mean

    v = np.random.default_rng(n).standard_cauchy(n)  # heavy tails: the cut matters
    assert evaluate.trimmed_mean(v, trim) == pytest.approx(float(trim_mean(v, trim)), rel=1e-12, abs=1e-12)
    with pytest.raises(ValueError, match="trim"):
        evaluate.trimmed_mean(v, 0.5)
    s = {"nll": np.array([4.0, 8.0, 12.0]), "baseline_nll": np.array([6.0, 6.0, 18.0]),
         "point": np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), "delta": np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 1.0]]),
         "logm_pred": np.log(np.array([2.0, 1.0, math.sqrt(2)]))}
    row = evaluate.metrics(s, dim=2, trim=0.0)
    assert row["nll_total_mean"] == 8.0 and row["nll_per_dim_mean"] == 4.0  # per dim = total / D
    assert row["dnll_total_mean"] == pytest.approx(-2.0) and row["dnll_per_dim_median"] == pytest.approx(-1.0)
    assert row["cos_mean"] == pytest.approx(1 / 3)  # cosines 1, 0 and 0 for a zero prediction
    assert row["logm_r2"] == pytest.approx(1.0)
    assert evaluate.r_squared(np.zeros(3), np.array([1.0, 2.0, 3.0])) == pytest.approx(1 - 14 / 2)
    assert math.isnan(evaluate.r_squared(np.zeros(2), np.ones(2)))


# ------------------------------------------------------------------ injection
class _Const:
    """A 'model' predicting a fixed Δx (and a unit-Gaussian NLL around it)."""

    def __init__(self, step):
        self.step = torch.as_tensor(step, dtype=torch.float64)

    def point(self, ctx):
        return self.step.expand(ctx.shape[0], -1)

    def nll(self, ctx, delta):
        return 0.5 * ((delta - self.point(ctx)) ** 2).sum(-1)

    def outputs(self, ctx, delta):
        return {"nll": self.nll(ctx, delta), "point": self.point(ctx)}


class _Slope:
    """Δ̂ = (newest − oldest frame of the window) / (W − 1) + bias: it reads the WHOLE window."""

    def __init__(self, window, dim, bias):
        self.window, self.dim, self.bias = window, dim, torch.as_tensor(bias, dtype=torch.float64)

    def point(self, ctx):
        w = ctx.reshape(ctx.shape[0], self.window, self.dim)
        return (w[:, -1] - w[:, 0]) / (self.window - 1) + self.bias

    def nll(self, ctx, delta):
        return 0.5 * ((delta - self.point(ctx)) ** 2).sum(-1)

    def outputs(self, ctx, delta):
        return {"nll": self.nll(ctx, delta), "point": self.point(ctx)}


class _Base:
    def nll(self, delta):
        return 0.5 * (delta**2).sum(-1)


def _ramp(r, window, steps, c):
    """True frames of r rollouts: x_t = t·c (a constant step c)."""
    t = torch.arange(window + steps, dtype=torch.float64)
    return (t[None, :, None] * torch.as_tensor(c, dtype=torch.float64)[None, None, :]).repeat(r, 1, 1)


@pytest.mark.parametrize("mode", injection.MODES)
def test_an_exact_model_has_zero_error_in_every_mode(mode):
    c = [0.5, -1.0]
    truth = _ramp(3, 4, 8, c)
    out = injection.rollout(_Const(c), _Base(), truth, 4, mode, 4, scale=1.0)
    assert np.abs(out["state_err"]).max() < 1e-12 and np.allclose(out["cos"], 1.0)
    assert np.allclose(out["mag_ratio"], 1.0)


def test_a_biased_model_drifts_in_d_stays_in_a_and_resets_in_b_and_c():
    c, b = np.array([1.0, 0.0]), np.array([0.0, 0.1])
    steps, scale = 12, 0.05
    truth = _ramp(2, 4, steps, c)
    err = {m: injection.rollout(_Const(c + b), _Base(), truth, 4, m, 4, scale)["state_err"][:, 0] * scale
           for m in injection.MODES}
    j = np.arange(steps)
    np.testing.assert_allclose(err["A"], 0.1)  # teacher forcing: one step's error, always
    np.testing.assert_allclose(err["D"], 0.1 * (j + 1))  # free: accumulates
    np.testing.assert_allclose(err["B"], 0.1 * (j % 4 + 1))  # reset before steps 4, 8
    np.testing.assert_allclose(err["C"], 0.1 * np.where(j == 0, 1, j))  # reset once, before step 2
    out = injection.rollout(_Const(c + b), _Base(), truth, 4, "A", 4, scale)
    np.testing.assert_allclose(out["state_err"], 2.0)  # normalised by the typical step
    np.testing.assert_allclose(out["dnll_per_dim"], (0.5 * 0.01 - 0.5 * 1.0) / 2)  # (model − baseline) / D


def test_injection_resets_the_whole_window():
    window, steps = 4, 8
    c, b = np.array([1.0]), np.array([0.2])
    truth = _ramp(1, window, steps, c)
    model = _Slope(window, 1, b)
    err = injection.rollout(model, _Base(), truth, window, "B", 4, 1.0)["state_err"][:, 0]
    # after a whole-window reset the slope model sees only truth again: step 4 errs like step 0
    assert err[4] == pytest.approx(err[0]) == pytest.approx(0.2)
    # resetting only the newest frame (the origin) would leave predicted frames in the window
    state = truth.clone()
    for j in range(4):
        win = state[:, j : j + window]
        state[:, window + j] = win[:, -1] + model.point(win.reshape(1, -1))
    state[:, 3 + window] = truth[:, 3 + window]  # newest frame only
    win = state[:, 4 : 4 + window]
    partial = float((win[:, -1] + model.point(win.reshape(1, -1)) - truth[:, window + 4]).abs())
    assert abs(partial - err[4]) > 0.05  # a partial reset would give a different error
    assert injection.RESETS == "full_window"


def test_rollout_utterances_and_starts_do_not_depend_on_the_representation():
    ids = [f"s{i:02d}" for i in range(40)]
    a = injection.choose_utterances(ids, 16, seed=3)
    assert a == injection.choose_utterances(list(reversed(ids)), 16, seed=3) and len(set(a)) == 16
    fr = injection.start_fractions(8)
    for n, w in ((37, 8), (222, 8)):  # the same utterance at 12.5 Hz and 75 Hz
        s = injection.start_frames(n, fr, w, 16)
        assert s.min() >= w and s.max() <= n - 16 and (np.diff(s) >= 0).all()
    hi = injection.start_frames(222, fr, 8, 16)
    np.testing.assert_allclose((hi - 8) / (222 - 16 - 8), fr, atol=1 / 198)


# ------------------------------------------------------------------ training and checkpoints
@pytest.mark.parametrize("family", train.FAMILIES)
def test_training_is_seeded_counts_passes_and_checkpoints_round_trip(tmp_path, family):
    rng = np.random.default_rng(0)
    x = torch.tensor(np.cumsum(rng.standard_normal((400, 3)), 0) * 0.1, dtype=torch.float32)
    t = np.arange(10, 400)
    runs = []
    for epochs, steps in ((1.0, 2), (0.5, 1), (2.0, 4)):  # 390 samples, batch 256
        base = train.fit_baseline(family, train.train_deltas(x, t))
        torch.manual_seed(0)
        m = train.build_model(family, 12, 3, hidden=16, components=2)
        train.init_from_baseline(m, base, 0)
        h = train.train(m, x, t, 1, 4, train.TrainConfig(epochs=epochs, batch_size=256, seed=5))
        assert h["steps"] == steps
        runs.append(m)
    torch.manual_seed(0)
    again = train.build_model(family, 12, 3, hidden=16, components=2)
    train.init_from_baseline(again, base, 0)
    train.train(again, x, t, 1, 4, train.TrainConfig(epochs=2.0, batch_size=256, seed=5))
    for p, q in zip(runs[-1].parameters(), again.parameters()):
        assert torch.equal(p, q)  # same seed, same weights
    extra = {"norm.mean": np.arange(3.0), "norm.std": np.ones(3)}
    meta = {"family": family, "n_in": 12, "dim": 3, "hidden": 16, "components": 2, "window": 4,
            "baseline": base.state() if family == "vmf" else "in safetensors"}
    if family == "mdn":
        extra.update({"baseline.mean": base.mean, "baseline.std": base.std})
    train.save_checkpoint(tmp_path / "m", again, extra, meta)
    loaded, ex, me = train.load_checkpoint(tmp_path / "m")
    ctx, delta = samples.gather(x, t[:50], 1, 4)
    with torch.no_grad():
        assert torch.equal(loaded.nll(ctx, delta), again.nll(ctx, delta))
        b2 = train.baseline_from(me, ex)
        assert torch.equal(b2.nll(delta.double()), base.nll(delta.double()))
    np.testing.assert_array_equal(ex["norm.mean"], np.arange(3.0))
    assert me == meta


# ------------------------------------------------------------------ comparison / headline
def _eval_json(family, encoders):
    reps, rows = [], []
    for enc in encoders:
        w = {"weights": "none"} if enc == "mel" else {"weights": "random-init", "sha256": "none"}
        reps.append({"encoder": enc, "provenance": {"encoder": enc, "weights": w,
                                                    "data": {"source": "embedded", "sha256": "a" * 64}}})
        for rate in ("native", "common"):
            for k in (1, 2):
                rows.append({"family": family, "encoder": enc, "rate": rate, "k": k, "frame_rate": 12.5, "dim": 4,
                             "pooling": "none", "epochs": 1, "steps": 3, "n_train": 10, "n": 5, "eval_speakers": "5/5",
                             "dnll_per_dim_mean": -0.1 * k, "cos_mean": 0.5 / k, "logm_r2": 0.1,
                             "nll_per_dim_mean": 1.0 + 0.25 * k, "dnll_ctx_per_dim_mean": -0.05 / k})
    return {"representations": reps, "rows": rows}


def test_headline_keys_are_stable_and_within_budget():
    evals = [_eval_json("vmf", ["mel", "encodec"]), _eval_json("mdn", ["mel", "encodec"])]
    rows = compare.comparison_rows(evals, ["mel", "mimi", "encodec"])
    assert [r["encoder"] for r in rows][:1] == ["mel"] and len(rows) == 16
    inj = [{"encoder": "mel", "rate": "common", "family": "vmf", "mode": "D", "step": 16, "state_err_median": 3.5}]
    values = compare.headline_values(rows, inj, 16, 12.5)
    data, weights, extra = compare.provenance(evals)
    out = headline("phase0.tier1", {**values, **extra}, data, weights)
    assert len(out) <= MAX_KEYS
    assert out["phase0.tier1.mel.vmf_dnll_ctx_k1"] == pytest.approx(-0.05)  # vs the context-free model
    assert out["phase0.tier1.mel.mdn_dnll_k1_vs_kmax"] == pytest.approx(-0.25)  # 1.25 − 1.5
    assert out["phase0.tier1.mel.vmf_state_error_free_step16"] == 3.5
    assert out["phase0.tier1.encodec.vmf_state_error_free_step16"] == "n/a"
    assert out["phase0.tier1.mimi.vmf_dnll_ctx_k1"] == "n/a" and out["phase0.tier1.weights.mimi"] == "n/a"
    assert out["phase0.tier1.mimi.vmf_dnll_k1_vs_kmax"] == "n/a"
    assert out["phase0.tier1.weights.mel"] == "none (mel)" and out["phase0.tier1.weights.encodec"] == "random-init"
    assert out["phase0.tier1.synthetic"] is True
    marks = compare.banners(data, weights)
    text = compare.render_report(rows, inj, marks, 16, 12.5)
    assert text.startswith("WARNING: synthetic data") and "random-init" in text and "not a forecast horizon" in text


@pytest.mark.parametrize("family", train.FAMILIES)
def test_one_forward_outputs_agree_with_the_separate_methods(family):
    torch.manual_seed(0)
    m = train.build_model(family, 12, 3, hidden=16, components=3)
    ctx, delta = torch.randn(7, 12), torch.randn(7, 3)
    with torch.no_grad():
        o = m.outputs(ctx, delta)
        assert torch.allclose(o["nll"], m.nll(ctx, delta)) and torch.allclose(o["point"], m.point(ctx))
        assert torch.allclose(o["log_magnitude"], m.log_magnitude(ctx))


def test_pooling_to_the_common_rate_stays_inside_utterances():
    s = _series([12, 7], ["a", "b"])
    s.frame_rate = 75.0
    p = samples.pooled(s, 12.5)  # groups of 6; a partial last group is averaged over its real frames
    assert p.offsets.tolist() == [0, 2, 4] and p.frame_rate == 12.5
    assert p.x[:, 0].tolist() == [2.5, 8.5, 14.5, 18.0]  # rows 0-5, 6-11 | 12-17, 18
    assert samples.pooled(s, 75.0) is s


# ------------------------------------------------------------------ same-family context-free baseline (issue 21)
def _mixture_frames(n: int, seed: int = 0) -> torch.Tensor:
    """I.i.d. frames from a two-component mixture: at a gap k >= 2 the context (frames up to t − k)
    is independent of Δx_t = x_t − x_{t−1}, a four-component mixture no single Gaussian fits."""
    rng = np.random.default_rng(seed)
    comp = rng.random(n) < 0.4
    mu = np.where(comp[:, None], [-2.0, 1.0, 1.0], [1.5, -0.5, -1.0])
    return torch.tensor(mu + 0.3 * rng.standard_normal((n, 3)), dtype=torch.float32)


@pytest.mark.parametrize("family", train.FAMILIES)
def test_a_context_free_model_of_the_family_absorbs_what_the_weak_baseline_misses(family):
    from audioprobe.phase0.tier1.pipeline import context_free_metrics

    x = _mixture_frames(4000)
    t_train, t_eval, w, k = np.arange(8, 3000), np.arange(3000, 4000), 4, 2
    cfg = train.TrainConfig(epochs=12.0, batch_size=128, lr=1e-2, seed=3)
    base = train.fit_baseline(family, train.train_deltas(x, t_train))
    models = []
    for free in (False, True):
        torch.manual_seed(0)
        m = (train.build_context_free(family, 3, hidden=16, components=4) if free
             else train.build_model(family, w * 3, 3, hidden=16, components=4))
        train.init_from_baseline(m, base, 0)
        train.train(m, x, t_train, k, w, cfg)
        models.append(m)
    cond = evaluate.per_sample(models[0], base, x, t_eval, k, w)
    cf_nll = evaluate.per_sample(models[1], base, x, t_eval, k, w)["nll"]
    row = {**evaluate.metrics(cond, 3, 0.1), **context_free_metrics(cond, cf_nll, 3, 0.1)}
    # the context carries no information here: against its own family without context the
    # conditioned model gains nothing ...
    assert abs(row["dnll_ctx_per_dim_mean"]) < 0.06
    if family == "mdn":  # ... while against one Gaussian it "gains" ~0.9 nats/dim: the weak baseline
        assert row["dnll_per_dim_mean"] < -0.5
        assert row["ctxfree_nll_per_dim_mean"] < row["baseline_nll_per_dim_mean"] - 0.5
    else:  # Δx is symmetric: no mean direction to learn, the vMF's context-free model is its baseline
        assert abs(row["ctxfree_nll_per_dim_mean"] - row["baseline_nll_per_dim_mean"]) < 0.01
    with torch.no_grad():  # the context-free model ignores its input entirely
        ctx, _ = samples.gather(x, t_eval[:5], k, w)
        a = models[1].point(ctx)
        b = models[1].point(torch.randn_like(ctx) * 100)
    assert torch.equal(a, b)


def test_context_gain_undertrained_flag_and_report_on_hand_rows():
    rows = []
    for fam in ("vmf", "mdn"):
        for k, nll, dctx, dmean, dmed in ((1, 0.9, -0.2, -0.5, -0.6), (4, 1.05, -0.05, -0.35, -0.4),
                                          (8, 1.1, 0.0, 0.3, -0.1)):
            rows.append({"encoder": "mel", "rate": "common", "family": fam, "k": k, "frame_rate": 12.5, "dim": 4,
                         "epochs": 1, "steps": 3, "eval_speakers": "5/5", "nll_per_dim_mean": nll,
                         "dnll_per_dim_mean": dmean, "dnll_per_dim_median": dmed, "dnll_per_dim_trim": dmean,
                         "dnll_total_mean": 4 * dmean, "cos_mean": 0.2, "logm_r2": 0.0,
                         "dnll_ctx_per_dim_mean": dctx, "dnll_ctx_per_dim_median": dctx})
    for r in rows:
        r["undertrained"] = compare.undertrained(r)
    assert [r["undertrained"] for r in rows] == [False, False, True] * 2  # mean +0.3, median −0.1
    assert compare.undertrained({"dnll_ctx_per_dim_mean": 0.01, "dnll_ctx_per_dim_median": -0.02})
    assert not compare.undertrained({"dnll_per_dim_mean": 0.01, "dnll_per_dim_median": 0.02})
    assert compare.context_gain(rows, "mel", "common", "vmf") == (1, 8, pytest.approx(-0.2))
    assert compare.context_gain(rows, "mimi", "common", "vmf")[2] == "n/a"
    text = compare.render_report(rows, [], [], 16, 12.5)
    section = text.split("What the context adds (the headline)")[1]
    line = next(ln for ln in section.splitlines() if ln.startswith("mel      common  vmf"))
    assert line.split()[3:] == ["-0.2000", "-0.2000", "8", "+0.0000", "-0.2000"]
    assert "UNDERTRAINED? mean dNLL > 0 while the median < 0" in text
    assert "mel common mdn k=8: vs baseline mean +0.3000 median -0.1000" in text
    marks = [compare.SYNTHETIC_BANNER, f"{compare.RANDOM_INIT_BANNER} (encodec, mimi)"]
    closing = compare.render_report(rows, [], marks, 16, 12.5).strip().splitlines()[-1]
    # the random-init sentence names its encoders: the mel rows used no weights
    assert closing.startswith("These numbers come from synthetic audio and random-init weights for encodec, mimi "
                              "(their rows only)"), closing
