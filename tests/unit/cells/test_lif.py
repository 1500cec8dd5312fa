"""LIF gate against values worked out by hand from the definition in lib/audioprobe/kws/README.md."""

from __future__ import annotations

import math

import pytest
import torch

from audioprobe.cells.lif import IdentityGate, LIFGate


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _lif_by_hand(x: float, t: float, l: float, s: float) -> tuple[float, float]:
    theta = abs(t) * 0.1
    leak = _sigmoid(l)
    k = math.log1p(math.exp(s))
    fire = _sigmoid(k * (abs(x) - theta))
    return x * (fire + leak * (1.0 - fire)), fire


def test_init_values():
    gate = LIFGate(3)
    assert torch.allclose(gate.threshold, torch.full((3,), 0.001))
    assert torch.allclose(gate.leak, torch.full((3,), _sigmoid(2.0)))
    assert torch.allclose(gate.steepness, torch.full((3,), math.log1p(math.exp(2.0))))


def test_default_params_match_hand_computation():
    xs = [0.5, -0.2, 0.0, 3.0, -0.001]
    gate = LIFGate(len(xs))
    y, fire = gate(torch.tensor(xs))
    for i, x in enumerate(xs):
        y_ref, f_ref = _lif_by_hand(x, 0.01, 2.0, 2.0)
        assert fire[i].item() == pytest.approx(f_ref, abs=1e-6)
        assert y[i].item() == pytest.approx(y_ref, abs=1e-6)
    # worked example, x = 0.5: θ = 0.001, k = ln(1 + e²) = 2.1269280, fire = σ(1.0613371) = 0.7429460,
    # λ = σ(2) = 0.8807971, y = 0.5·(0.7429460 + 0.8807971·0.2570540) = 0.4846792
    assert fire[0].item() == pytest.approx(0.7429460, abs=1e-6)
    assert y[0].item() == pytest.approx(0.4846792, abs=1e-6)


def test_per_unit_params_match_hand_computation():
    gate = LIFGate(2)
    with torch.no_grad():
        gate.t.copy_(torch.tensor([-0.5, 3.0]))  # θ = 0.05, 0.3 (|t| makes the sign irrelevant)
        gate.l.copy_(torch.tensor([0.0, -1.0]))  # λ = 0.5, σ(−1)
        gate.s.copy_(torch.tensor([0.0, 5.0]))  # k = ln 2, softplus(5)
    x = torch.tensor([[0.05, 0.1], [-1.0, 0.3]])
    y, fire = gate(x)
    for r in range(2):
        for u, (t, l, s) in enumerate([(-0.5, 0.0, 0.0), (3.0, -1.0, 5.0)]):
            y_ref, f_ref = _lif_by_hand(x[r, u].item(), t, l, s)
            assert fire[r, u].item() == pytest.approx(f_ref, abs=1e-6)
            assert y[r, u].item() == pytest.approx(y_ref, abs=1e-6)
    # at |x| = θ the gate is half open: fire = 1/2, y = x·(1/2 + λ/2) = 0.05·0.75
    assert fire[0, 0].item() == pytest.approx(0.5, abs=1e-6)
    assert y[0, 0].item() == pytest.approx(0.0375, abs=1e-7)


def test_norm_preserve_rescales_per_position():
    gate = LIFGate(2, norm_preserve=True)
    x = torch.tensor([[[3.0, 4.0], [0.0, 0.0], [0.3, -0.1]]])  # (B=1, T=3, 2)
    y, fire = gate(x)
    for t in range(3):
        ys = [_lif_by_hand(x[0, t, u].item(), 0.01, 2.0, 2.0)[0] for u in range(2)]
        nx = math.hypot(*x[0, t].tolist())
        ny = math.hypot(*ys)
        expect = [v * nx / ny for v in ys] if ny > 0 else ys
        assert y[0, t].tolist() == pytest.approx(expect, abs=1e-6)
    assert torch.linalg.vector_norm(y[0, 0]).item() == pytest.approx(5.0, abs=1e-5)
    assert torch.equal(y[0, 1], torch.zeros(2))  # ‖y‖ = 0 guard: zeros stay zeros
    # same fire values as without the rescale: it changes y only
    assert torch.equal(fire, LIFGate(2)(x)[1])


def test_norm_preserve_gradient_is_finite_at_zero():
    gate = LIFGate(4, norm_preserve=True)
    x = torch.zeros(2, 3, 4, requires_grad=True)
    y, _ = gate(x)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in gate.parameters())


def test_gradients_reach_all_three_parameters():
    gate = LIFGate(5)
    y, fire = gate(torch.randn(4, 7, 5))
    (y.sum() + fire.sum()).backward()
    for p in (gate.t, gate.l, gate.s):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_identity_gate_fires_always():
    x = torch.randn(2, 5, 3)
    y, fire = IdentityGate()(x)
    assert y is x
    assert fire.shape == x.shape and torch.equal(fire, torch.ones_like(x))
