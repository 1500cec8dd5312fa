"""The kws network: shapes, fire outputs, thresholds, seeding, init, and fast vs ncps CfC."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audioprobe.cells.lif import LIFGate
from audioprobe.kws.net import build_kws_net, param_groups
from audioprobe.kws.params import KwsModel

N_CLASSES = 5


def _cfg(**kw) -> KwsModel:
    base = dict(n_mels=10, n_embd=8, n_layer=2, units=14, mlp_hidden=16, dropout=0.1)
    base.update(kw)
    return KwsModel(**base)


def _net(condition="lif", seed=0, **kw):
    torch.manual_seed(seed)
    return build_kws_net(_cfg(**kw), condition, N_CLASSES)


@pytest.mark.parametrize("wiring", ["autoncp", "dense"])
@pytest.mark.parametrize("condition", ["base", "lif"])
def test_forward_shapes_and_fires(condition, wiring):
    net = _net(condition, wiring=wiring)
    x = torch.randn(3, 11, 10)
    logits, fires = net(x)
    assert logits.shape == (3, N_CLASSES)
    assert len(fires) == 2
    for fire in fires:
        assert fire.shape == (3, 11, 8)
        if condition == "base":
            assert torch.equal(fire, torch.ones_like(fire))
        else:
            assert ((fire > 0) & (fire < 1)).all()


def test_thresholds():
    lif = _net("lif").thresholds()
    assert len(lif) == 2
    for th in lif:
        assert th.shape == (8,) and torch.allclose(th, torch.full((8,), 0.001))
        assert not th.requires_grad
    assert _net("base").thresholds() == []


def test_fires_are_the_gate_outputs():
    net = _net("lif").eval()
    x = torch.randn(2, 6, 10)
    _, fires = net(x)
    # recompute block 0's gate input by hand: fire = sigmoid(k(|h| − θ)) of the CfC output
    block = net.blocks[0]
    h, _ = block.cfc(block.ln_1(net.proj(x)))
    gate: LIFGate = block.gate
    expected = torch.sigmoid(gate.steepness * (h.abs() - gate.threshold))
    assert torch.allclose(fires[0], expected, atol=1e-6)


def test_same_seed_same_net_and_logits():
    a, b = _net(seed=7), _net(seed=7)
    sd_a, sd_b = a.state_dict(), b.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    x = torch.randn(2, 9, 10)
    torch.manual_seed(1)
    la, _ = a(x)
    torch.manual_seed(1)
    lb, _ = b(x)
    assert torch.equal(la, lb)
    assert not torch.equal(_net(seed=8).state_dict()["proj.weight"], sd_a["proj.weight"])


@pytest.mark.parametrize("wiring", ["autoncp", "dense"])
def test_fast_and_ncps_impl_agree(wiring):
    fast = _net("lif", seed=3, cfc_impl="fast", wiring=wiring).eval()
    ref = _net("lif", seed=3, cfc_impl="ncps", wiring=wiring).eval()
    # the two implementations draw the same init from the same seed ...
    sd_f, sd_r = fast.state_dict(), ref.state_dict()
    assert list(sd_f) == list(sd_r) and all(torch.equal(sd_f[k], sd_r[k]) for k in sd_f)
    # ... and give the same logits and fires on copied weights (perturbed away from the init)
    with torch.no_grad():
        for p in ref.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(4, 15, 10)
    lf, ff = fast(x)
    lr, fr = ref(x)
    assert (lf - lr).abs().max().item() <= 1e-5
    for a, b in zip(ff, fr):
        assert (a - b).abs().max().item() <= 1e-5


def test_linear_init_and_param_groups():
    torch.manual_seed(0)
    net = build_kws_net(KwsModel(n_layer=1), "lif", 35)  # origin size, one block
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(linears) >= 2 + 2 + 12  # proj, head, MLP, 4 heads × 3 CfC layers
    w = torch.cat([m.weight.flatten() for m in linears])
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    assert abs(w.mean().item()) < 1e-3
    assert all(torch.count_nonzero(m.bias) == 0 for m in linears)

    decay, no_decay = param_groups(net, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    grouped = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert sorted(grouped) == sorted(trainable)
    torch.optim.AdamW(param_groups(net, 0.01), lr=1e-3)  # accepted as is


def test_param_groups_skip_ncps_frozen_masks():
    net = _net("lif", cfc_impl="ncps")
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen and all(n.endswith("sparsity_mask") for n in frozen)
    ids = {id(p) for g in param_groups(net, 0.01) for p in g["params"]}
    assert all(id(p) not in ids for p in net.parameters() if not p.requires_grad)


def test_training_step_moves_every_trainable_tensor():
    net = _net("lif").train()
    opt = torch.optim.AdamW(param_groups(net, 0.01), lr=1e-2)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    logits, _ = net(torch.randn(4, 7, 10))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    for n, p in net.named_parameters():
        assert not torch.equal(before[n], p), n


def test_bad_arguments():
    with pytest.raises(ValueError, match="condition"):
        build_kws_net(_cfg(), "nope", N_CLASSES)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input"):
        _net()(torch.randn(2, 5, 7))
