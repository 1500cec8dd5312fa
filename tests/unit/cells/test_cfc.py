"""FastCfC against the ncps reference: same outputs, states and gradients on copied weights.

Tolerances (kws lane README, "fast CfC"): outputs ≤ 1e-5 absolute; gradients ≤ 1e-5 relative to the
largest gradient (folding and fusing reorder float sums, which moves big gradients by
~1e-4 absolute).
"""

from __future__ import annotations

import pytest
import torch
from ncps.torch import CfC
from ncps.wirings import AutoNCP
from torch.func import functional_call

from audioprobe.cells.cfc import FastCfC, build_cfc, default_groups

OUT_TOL = 1e-5
GRAD_REL_TOL = 1e-5


def _wired(input_size=6, units=24, out=8, **kw) -> CfC:
    return CfC(input_size, AutoNCP(units, out), batch_first=True, return_sequences=True, **kw)


def _dense(input_size=6, units=12, proj=6, **kw) -> CfC:
    return CfC(input_size, units, proj_size=proj, batch_first=True, return_sequences=True, backbone_units=16, **kw)


def _grads(module, x, hx=None, timespans=None, seed=1):
    """Output, final state and grads of x and every trainable parameter for a fixed cotangent."""
    x = x.detach().clone().requires_grad_(True)
    y, h = module(x, hx, timespans) if timespans is not None or hx is not None else module(x)
    gen = torch.Generator().manual_seed(seed)
    gy = torch.randn(y.shape, generator=gen)
    gh = torch.randn(h.shape, generator=gen)
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad((y * gy).sum() + (h * gh).sum(), [x, *params.values()])
    return y.detach(), h.detach(), dict(zip(["x", *params], grads))


def _assert_parity(ref_out, fast_out):
    y_r, h_r, g_r = ref_out
    y_f, h_f, g_f = fast_out
    assert (y_r - y_f).abs().max().item() <= OUT_TOL
    assert (h_r - h_f).abs().max().item() <= OUT_TOL
    assert set(g_r) == set(g_f)
    scale = max(g.abs().max().item() for g in g_r.values())
    for name in g_r:
        diff = (g_r[name] - g_f[name]).abs().max().item()
        assert diff <= GRAD_REL_TOL * scale, f"{name}: {diff} > {GRAD_REL_TOL} * {scale}"


@pytest.mark.parametrize("make", [_wired, _dense], ids=["wired", "dense"])
def test_fast_matches_ncps(make):
    torch.manual_seed(0)
    ref = make()
    fast = FastCfC.from_ncps(ref)
    x = torch.randn(5, 13, 6)
    _assert_parity(_grads(ref, x), _grads(fast, x))


def test_fast_matches_ncps_at_origin_size():
    torch.manual_seed(0)
    ref = CfC(128, AutoNCP(192, 128), batch_first=True, return_sequences=True)
    fast = FastCfC.from_ncps(ref)
    assert fast.layout.layer_sizes == (39, 25, 128)  # inter, command, motor
    x = torch.randn(4, 12, 128)
    _assert_parity(_grads(ref, x), _grads(fast, x))


@pytest.mark.parametrize("groups", [((0, 0), (1, 1), (2, 2)), ((0, 2),), ((0, 0), (1, 2))])
def test_every_layer_grouping_gives_the_same_result(groups):
    torch.manual_seed(0)
    ref = _wired()
    fast = FastCfC.from_ncps(ref, groups=groups)
    x = torch.randn(3, 9, 6)
    _assert_parity(_grads(ref, x), _grads(fast, x))


def test_default_groups_fuse_the_small_layers():
    assert default_groups([39, 25, 128]) == ((0, 1), (2, 2))


@pytest.mark.parametrize("make", [_wired, _dense], ids=["wired", "dense"])
def test_general_path_per_sample_timespans(make):
    # ncps squeezes timespans[:, t] and only broadcasts it right for batch 1, so the
    # reference runs one sample at a time.
    torch.manual_seed(0)
    ref = make()
    fast = FastCfC.from_ncps(ref)
    x = torch.randn(3, 8, 6)
    ts = torch.rand(3, 8) * 2.0 + 0.1
    y_f, h_f, _ = _grads(fast, x, timespans=ts)
    for b in range(3):
        y_r, h_r = ref(x[b : b + 1], None, ts[b : b + 1])
        assert (y_r - y_f[b : b + 1]).abs().max().item() <= OUT_TOL
        assert (h_r - h_f[b : b + 1]).abs().max().item() <= OUT_TOL
    # (B, T, 1) is the same as (B, T)
    assert torch.allclose(fast(x, None, ts[..., None])[0], y_f, atol=1e-7)


@pytest.mark.parametrize("make", [_wired, _dense], ids=["wired", "dense"])
def test_general_path_gradients_with_initial_state(make):
    torch.manual_seed(0)
    ref = make()
    fast = FastCfC.from_ncps(ref)
    x = torch.randn(4, 7, 6)
    hx = torch.randn(4, fast.state_size) * 0.5
    _assert_parity(_grads(ref, x, hx=hx), _grads(fast, x, hx=hx))


@pytest.mark.parametrize("make", [_wired, _dense], ids=["wired", "dense"])
def test_scalar_timespan_fast_path_matches_general_path(make):
    torch.manual_seed(0)
    fast = FastCfC.from_ncps(make())
    x = torch.randn(3, 6, 6)
    y_fast, h_fast = fast(x, None, 0.37)
    y_gen, h_gen = fast(x, None, torch.full((3, 6), 0.37))
    assert (y_fast - y_gen).abs().max().item() <= OUT_TOL
    assert (h_fast - h_gen).abs().max().item() <= OUT_TOL
    # and ncps itself with a scalar timespan at batch 1
    ref = make()
    ref.load_state_dict(fast.state_dict())
    y_r, _ = ref(x[:1], None, torch.full((1, 6), 0.37))
    assert (y_r - y_fast[:1]).abs().max().item() <= OUT_TOL


@pytest.mark.parametrize("make", [_wired, _dense], ids=["wired", "dense"])
def test_hand_written_backward_passes_gradcheck(make):
    torch.manual_seed(0)
    fast = FastCfC.from_ncps(make(input_size=3, units=7, out=2) if make is _wired else make(3, 5, 3)).double()
    names = [n for n, p in fast.named_parameters() if p.requires_grad]
    params = [p.detach().clone().requires_grad_(True) for n, p in fast.named_parameters() if p.requires_grad]
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)

    def fn(x, *ps):
        y, h = functional_call(fast, dict(zip(names, ps)), (x,))
        return y, h

    # fast_mode checks random projections of the Jacobian: same power, a fraction of the time
    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-7, fast_mode=True)


def test_seeded_build_equals_ncps_build():
    # same parameter names, shapes and RNG draws: a seeded FastCfC is the seeded ncps CfC
    for spec in (lambda: AutoNCP(24, 8), lambda: 12):
        torch.manual_seed(3)
        proj = None if not isinstance(spec(), int) else 6
        ref = CfC(6, spec(), proj_size=proj, batch_first=True)
        torch.manual_seed(3)
        fast = FastCfC(6, spec(), proj_size=proj)
        sd_r, sd_f = ref.state_dict(), fast.state_dict()
        assert list(sd_r) == list(sd_f)
        assert all(torch.equal(sd_r[k], sd_f[k]) for k in sd_r)


def test_layout_options_match_ncps():
    torch.manual_seed(0)
    ref = CfC(6, AutoNCP(24, 8), batch_first=False, return_sequences=False)
    fast = FastCfC.from_ncps(ref)
    x = torch.randn(9, 3, 6)  # (T, B, C)
    y_r, h_r = ref(x)
    y_f, h_f = fast(x)
    assert y_f.shape == y_r.shape == (3, 8)
    assert (y_r - y_f).abs().max().item() <= OUT_TOL
    assert (h_r - h_f).abs().max().item() <= OUT_TOL


def test_no_grad_forward_matches():
    torch.manual_seed(0)
    ref = _wired()
    fast = FastCfC.from_ncps(ref)
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        assert (ref(x)[0] - fast(x)[0]).abs().max().item() <= OUT_TOL


def test_from_ncps_rejects_what_it_does_not_implement():
    with pytest.raises(ValueError, match="mixed_memory"):
        FastCfC.from_ncps(_dense(mixed_memory=True))
    with pytest.raises(ValueError, match="mode"):
        FastCfC.from_ncps(_dense(mode="pure"))
    with pytest.raises(ValueError, match="backbone"):
        FastCfC.from_ncps(CfC(6, 12, backbone_layers=2))


def test_build_cfc_shapes():
    x = torch.randn(2, 5, 8)
    for impl in ("fast", "ncps"):
        for wiring in ("autoncp", "dense"):
            y, _ = build_cfc(impl, wiring, n_embd=8, units=14)(x)
            assert y.shape == (2, 5, 8)


@pytest.mark.gpu
def test_fast_matches_ncps_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    ref = CfC(128, AutoNCP(192, 128), batch_first=True).cuda()
    fast = FastCfC.from_ncps(ref)
    x = torch.randn(8, 20, 128, device="cuda")
    with torch.no_grad():
        assert (ref(x)[0] - fast(x)[0]).abs().max().item() <= OUT_TOL
