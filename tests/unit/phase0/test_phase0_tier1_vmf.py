"""tier1 vmf: the vMF × LogNormal density on ℝ^D, its pieces, and recovery of known parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp
import torch

from audioprobe.phase0.tier1.vmf import (
    VmfLogNormalNet,
    VmfParams,
    baseline_nll,
    fit_lognormal,
    log_bessel_iv,
    log_sphere_area,
    point_prediction,
    sample_vmf,
    vmf_lognormal_nll,
    vmf_log_norm,
)


@pytest.mark.parametrize("nu, tol", [(0.5, 1e-12), (2.5, 2e-4), (7.0, 1e-5), (39.0, 1e-8), (255.0, 1e-8)])
def test_log_bessel_matches_an_arbitrary_precision_reference(nu, tol):
    mpmath = pytest.importorskip("mpmath")
    k = np.array([1e-3, 0.05, 0.5, 1.0, 3.0, 10.0, 50.0, 300.0, 3000.0])
    ref = np.array([float(mpmath.log(mpmath.besseli(nu, float(v)))) for v in k])  # no underflow
    got = log_bessel_iv(nu, torch.tensor(k, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, ref, atol=tol, rtol=1e-12)


def test_vmf_normaliser_integrates_to_one_and_tends_to_uniform():
    rng = np.random.default_rng(0)
    dim, kappa = 5, 2.0
    mu = np.eye(dim)[0]
    u = rng.standard_normal((400_000, dim))
    u /= np.linalg.norm(u, axis=1, keepdims=True)  # uniform on the sphere
    log_c = float(vmf_log_norm(torch.tensor(kappa, dtype=torch.float64), dim))
    integral = math.exp(log_sphere_area(dim)) * np.mean(np.exp(log_c + kappa * u @ mu))
    assert abs(integral - 1.0) < 0.01
    # κ → 0: the vMF becomes the uniform density 1/area
    tiny = float(vmf_log_norm(torch.tensor(1e-8, dtype=torch.float64), dim))
    assert abs(tiny + log_sphere_area(dim)) < 1e-3  # the expansion's error at ν = 1.5


def test_sampler_has_the_mean_resultant_length_of_its_kappa():
    rng = np.random.default_rng(1)
    for dim, kappa in ((3, 4.0), (16, 20.0), (64, 100.0)):
        mu = rng.standard_normal(dim)
        mu /= np.linalg.norm(mu)
        x = sample_vmf(mu, kappa, 50_000, rng)
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-9)
        expected = sp.ive(dim / 2, kappa) / sp.ive(dim / 2 - 1, kappa)  # A_D(κ)
        assert abs((x @ mu).mean() - expected) < 0.005, (dim, kappa)


def test_density_on_rd_and_the_baseline_agree_at_kappa_zero():
    rng = np.random.default_rng(2)
    delta = torch.tensor(rng.standard_normal((100, 6)) * 0.3, dtype=torch.float64)
    n = delta.shape[0]
    p = VmfParams(mu_dir=torch.nn.functional.normalize(torch.ones(n, 6, dtype=torch.float64), dim=-1),
                  kappa=torch.full((n,), 1e-9, dtype=torch.float64),
                  mu_logm=torch.full((n,), -0.2, dtype=torch.float64), sigma=torch.full((n,), 0.7, dtype=torch.float64))
    got, base = vmf_lognormal_nll(delta, p), baseline_nll(delta, -0.2, 0.7)
    np.testing.assert_allclose(got["total"].numpy(), base["total"].numpy(), atol=1e-4)  # expansion at ν = 2
    # the (D − 1) log m Jacobian is what moves the sphere × magnitude density to ℝ^D
    m = delta.norm(dim=-1)
    np.testing.assert_allclose(got["jacobian"].numpy(), (5 * torch.log(m)).numpy())
    # ℝ^D check in D = 3 against a direct density: isotropic Gaussian Δx has a uniform
    # direction and a χ₃·s magnitude; with the exact magnitude density the NLLs must equal.
    s = 0.3
    x3 = torch.tensor(rng.standard_normal((50, 3)) * s, dtype=torch.float64)
    r = x3.norm(dim=-1)
    gauss = 0.5 * (x3**2).sum(-1) / s**2 + 1.5 * math.log(2 * math.pi * s**2)
    chi_nll = -(math.log(math.sqrt(2 / math.pi)) + 2 * torch.log(r / s) - 0.5 * (r / s) ** 2 - math.log(s))
    dir_nll = math.log(4 * math.pi)
    np.testing.assert_allclose((dir_nll + chi_nll + 2 * torch.log(r)).numpy(), gauss.numpy(), atol=1e-9)


@pytest.fixture(autouse=True)
def _one_thread():
    # small fits: a second thread only adds contention on a shared 2-core box
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit(net, ctx, delta, steps, lr):
    return _fit_with(net, torch.optim.Adam(net.parameters(), lr=lr), ctx, delta, steps)


def _fit_with(net, opt, ctx, delta, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = vmf_lognormal_nll(delta, net(ctx))["total"].mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return float(loss.detach())


def _synthetic(rng, n, dim, kappa, mu_dir, mu, sigma):
    d = sample_vmf(mu_dir, kappa, n, rng)
    m = np.exp(mu + sigma * rng.standard_normal(n))
    return torch.tensor(d * m[:, None], dtype=torch.float32)


def _fit_to_convergence(net, ctx, delta, lr, chunk=100, max_steps=6000, rtol=1e-7) -> int:
    """Full-batch Adam until a chunk of steps changes the loss by less than `rtol` (relative);
    return the steps taken. The lr halves whenever a chunk makes things worse."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    prev, steps = _fit_chunk(net, opt, ctx, delta, chunk), chunk
    while steps < max_steps:
        loss = _fit_chunk(net, opt, ctx, delta, chunk)
        steps += chunk
        if loss > prev:
            for g in opt.param_groups:
                g["lr"] /= 2
        elif prev - loss < rtol * abs(prev):
            return steps
        prev = loss
    return steps


def _fit_chunk(net, opt, ctx, delta, steps) -> float:
    _fit_with(net, opt, ctx, delta, steps)
    with torch.no_grad():
        return float(vmf_lognormal_nll(delta, net(ctx))["total"].mean())


def _vmf_mle(d: np.ndarray) -> tuple[np.ndarray, float]:
    """Closed-form mean direction and the κ solving A_D(κ) = mean resultant length (the vMF MLE)."""
    from scipy.optimize import brentq

    r = d.mean(0)
    rbar, dim = float(np.linalg.norm(r)), d.shape[1]
    kappa = brentq(lambda k: sp.ive(dim / 2, k) / sp.ive(dim / 2 - 1, k) - rbar, 1e-6, 1e4)
    return r / np.linalg.norm(r), kappa


def test_fit_recovers_known_kappa_direction_mu_and_sigma_from_a_bad_start():
    """Checked two ways, neither by floating-point luck: the fit must reach the sample's maximum
    likelihood estimate (closed form; the fit converges by a criterion it checks), and that
    estimate must lie within 4 standard errors of the truth (SE of μ = σ/√n, of σ = σ/√(2n))."""
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    n, dim, kappa, mu, sigma = 8000, 8, 12.0, -0.5, 0.4
    mu_dir = rng.standard_normal(dim)
    mu_dir /= np.linalg.norm(mu_dir)
    delta = _synthetic(rng, n, dim, kappa, mu_dir, mu, sigma)
    ctx = torch.ones(delta.shape[0], 1)
    net = VmfLogNormalNet(1, dim, hidden=8)
    with torch.no_grad():  # far from the truth, and where a hard clamp would have stopped
        net.head.bias[dim].fill_(-5.0)  # raw κ
        net.head.bias[dim + 2].fill_(4.0)  # raw σ
    steps = _fit_to_convergence(net, ctx, delta, lr=0.1)
    assert steps < 6000, "the fit did not converge"
    with torch.no_grad():
        p = net(ctx[:1])
    d = delta.double().numpy()
    m = np.linalg.norm(d, axis=1)
    hat_dir, hat_kappa = _vmf_mle(d / m[:, None])
    b_mu, b_sigma = fit_lognormal(delta.numpy())
    assert b_mu == pytest.approx(np.log(m).mean(), abs=1e-6) and b_sigma == pytest.approx(np.log(m).std(), abs=1e-6)
    # the fit reached the MLE (optimisation error, far below the statistical one)
    assert float(p.mu_logm[0]) == pytest.approx(b_mu, abs=1e-4)
    assert float(p.sigma[0]) == pytest.approx(b_sigma, rel=1e-4)
    assert float(p.kappa[0]) == pytest.approx(hat_kappa, rel=1e-3)
    assert float(p.mu_dir[0] @ torch.tensor(hat_dir, dtype=torch.float32)) > 0.9999
    # the MLE is where the truth says it should be
    assert abs(b_mu - mu) < 4 * sigma / np.sqrt(n) and abs(b_sigma - sigma) < 4 * sigma / np.sqrt(2 * n)
    assert abs(hat_kappa / kappa - 1) < 0.05 and float(hat_dir @ mu_dir) > 0.999
    # and the fitted model beats the baseline (uniform direction + train LogNormal) by about
    # the vMF's information: E[−log uniform] − E[−log vMF] > 0
    with torch.no_grad():
        gain = (baseline_nll(delta, b_mu, b_sigma)["total"] - vmf_lognormal_nll(delta, net(ctx))["total"]).mean()
    assert gain > 1.0


def test_context_dependent_direction_is_learned_by_the_mlp():
    torch.manual_seed(1)
    rng = np.random.default_rng(4)
    n, n_in, dim, kappa = 3000, 4, 8, 30.0
    ctx = rng.standard_normal((n, n_in))
    a = rng.standard_normal((dim, n_in))
    mu_dirs = ctx @ a.T
    mu_dirs /= np.linalg.norm(mu_dirs, axis=1, keepdims=True)
    # vMF around e1, then the Householder reflection that maps e1 to each row's μ
    e1 = np.eye(dim)[0]
    d0 = sample_vmf(e1, kappa, n, rng)
    v = e1[None, :] - mu_dirs
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    d = d0 - 2.0 * (d0 * v).sum(1, keepdims=True) * v
    delta = torch.tensor(d * np.exp(0.1 * rng.standard_normal(n))[:, None], dtype=torch.float32)
    net = VmfLogNormalNet(n_in, dim, hidden=32)
    net.init_magnitude(*fit_lognormal(delta.numpy()))
    ctx_t = torch.tensor(ctx, dtype=torch.float32)
    _fit(net, ctx_t, delta, steps=300, lr=1e-2)
    with torch.no_grad():
        p = net(ctx_t)
    cos = (p.mu_dir * torch.tensor(mu_dirs, dtype=torch.float32)).sum(-1)
    assert float(cos.mean()) > 0.95
    assert abs(float(p.kappa.median()) / kappa - 1) < 0.3


def test_heads_start_sensible_and_the_point_prediction_uses_the_median():
    net = VmfLogNormalNet(10, 6, hidden=8)
    net.init_magnitude(-1.0, 0.5)
    with torch.no_grad():
        p = net(torch.randn(5, 10))
    assert torch.allclose(p.kappa, torch.ones(5), atol=0.1)
    assert torch.allclose(p.mu_logm, torch.full((5,), -1.0), atol=0.1)
    assert torch.allclose(p.sigma, torch.full((5,), 0.5), atol=0.1)
    big = VmfParams(mu_dir=torch.eye(3)[:1], kappa=torch.ones(1), mu_logm=torch.zeros(1), sigma=torch.full((1,), 5.0))
    assert torch.allclose(point_prediction(big), torch.tensor([[1.0, 0.0, 0.0]]))  # exp(μ), not exp(μ + σ²/2)
    # every output (direction, κ, μ, σ) gets a gradient at init (no clamp to die at)
    loss = vmf_lognormal_nll(torch.randn(5, 6), net(torch.randn(5, 10)))["total"].mean()
    loss.backward()
    grad = net.head.bias.grad
    for part in (grad[:6], grad[6:7], grad[7:8], grad[8:9]):
        assert float(part.abs().sum()) > 0
