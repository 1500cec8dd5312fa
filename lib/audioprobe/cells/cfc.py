"""Closed-form continuous-time (CfC) RNN: the ncps reference and a fast twin with the same math.

`FastCfC` reproduces `ncps.torch.CfC` (mode "default", no mixed memory, lecun_tanh
backbone) for an NCP wiring or dense units. Parameters and buffers carry the same names
and shapes as ncps' (`rnn_cell.layer_0.ff1.weight`, ..., `rnn_cell.layer_0.sparsity_mask`),
are created in the same order from the same RNG draws, and so a state dict moves either
way and a seeded build gives identical weights. The ncps math, per layer and step
(ncps/torch/cfc_cell.py, wired_cfc_cell.py):

    z  = [input, h]                      (dense: z = lecun_tanh(backbone(z)))
    f1 = tanh(ff1(z)),  f2 = tanh(ff2(z))   (wired: ff1/ff2 weights · sparsity mask)
    g  = sigmoid(time_a(z)·ts + time_b(z))  (no mask on time_a / time_b)
    h  = f1·(1 − g) + g·f2

Wired: layers inter -> command -> motor, each reads the previous layer's new state; the
output is the motor layer (ncps: `h` of the last layer), the state is the layers' states
concatenated in layer order. Dense: the output is the state through `fc` (proj_size).

Fast path (hx None, scalar timespan): time_a·ts + time_b is one weight; tanh(z) =
2·sigmoid(2z) − 1 and h = 2m − 1 are folded into weights and biases; masks are applied
once per forward; ff1, ff2 and the gate are one matmul; the scan is the hand-written
BPTT in cfc_autograd.py. General path (per-sample timespans or an initial state): a
plain autograd loop with the exact ncps formulas and fused, pre-masked linears.
Timespans there may be (B, T) or (B, T, 1), one per sample and step; ncps itself only
broadcasts those correctly for batch 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from ncps.wirings import AutoNCP, Wiring
from torch import Tensor, nn

from audioprobe.cells.cfc_autograd import DenseScan, WaveLayout, WiredScan

# lecun_tanh(u) = 1.7159·tanh(0.666·u) (ncps LeCun)
LECUN_A = 1.7159
LECUN_B = 0.666


class LeCun(nn.Module):
    """ncps' backbone activation, 1.7159·tanh(0.666·x) (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        return LECUN_A * torch.tanh(LECUN_B * x)


class _Heads(nn.Module):
    """The four linears of one ncps CfCCell (mode "default"), same names and init order."""

    def __init__(self, in_features: int, hidden: int, backbone: nn.Module | None, mask: np.ndarray | None):
        super().__init__()
        if mask is not None:
            # ncps stores |mask|ᵀ as a frozen Parameter; a buffer keeps the state-dict key
            # and stays out of the optimizer.
            self.register_buffer("sparsity_mask", torch.from_numpy(np.abs(mask.T).astype(np.float32)))
        else:
            self.sparsity_mask = None
        if backbone is not None:
            self.backbone = backbone
        self.ff1 = nn.Linear(in_features, hidden)
        self.ff2 = nn.Linear(in_features, hidden)
        self.time_a = nn.Linear(in_features, hidden)
        self.time_b = nn.Linear(in_features, hidden)
        # ncps CfCCell.init_weights: xavier_uniform_ on every trainable 2-D parameter, in order
        for w in self.parameters():
            if w.dim() == 2 and w.requires_grad:
                nn.init.xavier_uniform_(w)

    def masked(self) -> tuple[Tensor, Tensor]:
        """ff1 and ff2 weights with the wiring mask applied (ncps masks only these two)."""
        if self.sparsity_mask is None:
            return self.ff1.weight, self.ff2.weight
        return self.ff1.weight * self.sparsity_mask, self.ff2.weight * self.sparsity_mask


class _WiredCell(nn.Module):
    """Holds one _Heads per wiring layer as layer_0, layer_1, ... (ncps WiredCfCCell names)."""

    def __init__(self, input_size: int, wiring: Wiring):
        super().__init__()
        wiring.build(input_size)
        self.layer_sizes = [len(wiring.get_neurons_of_layer(i)) for i in range(wiring.num_layers)]
        in_features = input_size
        for l in range(wiring.num_layers):
            neurons = wiring.get_neurons_of_layer(l)
            if l == 0:
                sparsity = wiring.sensory_adjacency_matrix[:, neurons]
            else:
                prev = wiring.get_neurons_of_layer(l - 1)
                sparsity = wiring.adjacency_matrix[:, neurons][prev, :]
            # the recurrent block inside a layer is dense
            sparsity = np.concatenate([sparsity, np.ones((len(neurons), len(neurons)))], axis=0)
            self.add_module(f"layer_{l}", _Heads(in_features + len(neurons), len(neurons), None, sparsity))
            in_features = len(neurons)

    def layers(self) -> list[_Heads]:
        return [getattr(self, f"layer_{l}") for l in range(len(self.layer_sizes))]


# One small op (launch, dispatch, a pass over a cache-resident slice) costs about as much
# as this many multiply-adds on the 2-core dev CPU (MKL sgemm at batch 64 runs at ~34 GMAC/s
# per core; a small op ~9 µs). Only used to choose how wired layers are fused.
OP_COST_MACS = 300_000


def default_groups(layer_sizes: list[int], batch: int = 64) -> tuple[tuple[int, int], ...]:
    """Fuse consecutive wired layers into matmul groups, trading zero-padded FLOPs for fewer ops.

    Per wave a group costs one matmul over its read window (paid three times: forward,
    backward, weight gradient) plus four small ops (matmul, lerp, backward mul, backward
    matmul). Exhaustive over the 2^(L-1) contiguous partitions (L = 3 for NCP wirings);
    for AutoNCP(192, 128) this fuses inter + command and leaves motor alone.
    """
    L = len(layer_sizes)
    best: tuple[float, tuple[tuple[int, int], ...]] | None = None
    for cut_mask in range(2 ** (L - 1)):
        groups, start = [], 0
        for l in range(L - 1):
            if cut_mask >> l & 1:
                groups.append((start, l))
                start = l + 1
        groups.append((start, L - 1))
        cost = 0.0
        for a, b in groups:
            read = sum(layer_sizes[max(a - 1, 0) : b + 1])  # [m_{a-1} .. m_b]; x is projected apart
            out = 3 * sum(layer_sizes[a : b + 1])
            cost += 3 * batch * read * out + 4 * OP_COST_MACS
        if best is None or cost < best[0]:
            best = (cost, tuple(groups))
    assert best is not None
    return best[1]


class FastCfC(nn.Module):
    """Drop-in for ncps.torch.CfC (mode "default", mixed_memory off): forward(x, hx, timespans)
    -> (output, h_n), with x (B, T, input_size) when batch_first."""

    def __init__(
        self,
        input_size: int,
        units: int | Wiring,
        proj_size: int | None = None,
        return_sequences: bool = True,
        batch_first: bool = True,
        backbone_units: int = 128,
        groups: tuple[tuple[int, int], ...] | None = None,
    ):
        super().__init__()
        self.input_size = input_size
        self.proj_size = proj_size
        self.return_sequences = return_sequences
        self.batch_first = batch_first
        if isinstance(units, Wiring):
            self.wired = True
            self.wiring = units
            self.rnn_cell: nn.Module = _WiredCell(input_size, units)
            sizes = self.rnn_cell.layer_sizes
            self.state_size = units.units
            self.output_size = sizes[-1]
            self.layout = WaveLayout(input_size, tuple(sizes), groups or default_groups(sizes))
        else:
            self.wired = False
            self.state_size = units
            self.output_size = units
            backbone = nn.Sequential(nn.Linear(input_size + units, backbone_units), LeCun())
            self.rnn_cell = _Heads(backbone_units, units, backbone, None)
        self.fc: nn.Module = nn.Identity() if proj_size is None else nn.Linear(self.output_size, proj_size)

    @classmethod
    def from_ncps(cls, module: nn.Module, **kwargs) -> FastCfC:
        """Return a FastCfC with the configuration and a copy of the weights of an ncps CfC."""
        cell = module.rnn_cell
        if getattr(module, "use_mixed", False):
            raise ValueError("FastCfC does not implement ncps mixed_memory=True")
        if getattr(module, "wired_mode", False):
            units: int | Wiring = module.wiring
            modes = {layer.mode for layer in cell._layers}
            backbone_units = 128
        else:
            units = module.state_size
            modes = {cell.mode}
            backbone = cell.backbone
            if (
                cell.backbone_layers != 1
                or len(backbone) != 2
                or not isinstance(backbone[1], nn.Module)
                or type(backbone[1]).__name__ != "LeCun"
            ):
                raise ValueError("FastCfC implements the dense CfC with one lecun_tanh backbone layer only")
            backbone_units = backbone[0].out_features
        if modes != {"default"}:
            raise ValueError(f"FastCfC implements ncps mode 'default' only, got {sorted(modes)}")
        fast = cls(
            module.input_size,
            units,
            proj_size=module.proj_size,
            return_sequences=module.return_sequences,
            batch_first=module.batch_first,
            backbone_units=backbone_units,
            **kwargs,
        )
        fast.to(next(module.parameters()).device)
        fast.load_state_dict(module.state_dict())
        return fast

    # ------------------------------------------------------------------ folding
    def _folded_wired(self, ts: float) -> list[Tensor]:
        """[Wx, then per group W, b] for WiredScan: weights acting on the m-space slots of A.

        Rows per group are [s1 | s2 | gate] of its layers; Wx (3·H_0, I) holds the raw-x
        columns of layer 0, rows [s1 | s2 | gate].
        """
        layout = self.layout
        layers = self.rnn_cell.layers()
        I = self.input_size
        heads_w: list[Tensor] = []  # per layer (3, H_l, read width of its group)
        heads_b: list[Tensor] = []  # per layer (3, H_l)
        Wx: Tensor | None = None
        for g, (a, b) in enumerate(layout.groups):
            r0, r1 = layout.read_cols(g)
            for l in range(a, b + 1):
                cell = layers[l]
                H = layout.layer_sizes[l]
                # tanh(z) = 2·sigmoid(2z) − 1 puts a 2 on ff1/ff2 (masked once here); the gate
                # preactivation time_a·ts + time_b is one weight.
                w12 = torch.cat([cell.ff1.weight, cell.ff2.weight])  # (2H, in)
                if cell.sparsity_mask is not None:
                    w12 = w12 * (2.0 * cell.sparsity_mask).repeat(2, 1)
                else:
                    w12 = 2.0 * w12
                w_gate = torch.add(cell.time_b.weight, cell.time_a.weight, alpha=ts)
                w3 = torch.cat([w12, w_gate]).view(3, H, -1)  # (3, H, in) heads s1, s2, gate
                b_gate = torch.add(cell.time_b.bias, cell.time_a.bias, alpha=ts)
                b3 = torch.cat([2.0 * cell.ff1.bias, 2.0 * cell.ff2.bias, b_gate]).view(3, H)  # (3, H)
                n_x = I if l == 0 else 0  # columns that take raw x rather than a state h
                w_m = w3[:, :, n_x:]
                if l == 0:
                    Wx = w3[:, :, :n_x].reshape(3 * H, I)  # (3·H_0, I)
                # v·h with h = 2m − 1 is 2v·m − v·1
                c0, c1 = layout.layer_read_cols(l)
                heads_w.append(F.pad(2.0 * w_m, (c0 - r0, r1 - c1)))
                heads_b.append(b3 - w_m.sum(dim=2))
        assert Wx is not None
        out: list[Tensor] = [Wx]
        for a, b in layout.groups:
            out.append(torch.cat(heads_w[a : b + 1], dim=1).flatten(0, 1))  # (3·units, read width)
            out.append(torch.cat(heads_b[a : b + 1], dim=1).flatten())  # (3·units,)
        return out

    def _folded_dense(self, ts: float) -> list[Tensor]:
        """[Wqx, Wqm, bq, Ws, bs] for DenseScan: backbone on x and m, heads on q."""
        cell: _Heads = self.rnn_cell
        lin = cell.backbone[0]
        I = self.input_size
        # lecun_tanh(u) = A·(2·sigmoid(2B·u) − 1) with u = W·[x, 2m − 1] + b
        w_x, w_h = lin.weight[:, :I], lin.weight[:, I:]
        Wqx = (2.0 * LECUN_B) * w_x
        Wqm = (4.0 * LECUN_B) * w_h
        bq = (2.0 * LECUN_B) * (lin.bias - w_h.sum(dim=1))
        # heads act on A·(2q − 1); ff1/ff2 also take the tanh factor 2
        heads = [
            (2.0, cell.ff1.weight, cell.ff1.bias),
            (2.0, cell.ff2.weight, cell.ff2.bias),
            (1.0, ts * cell.time_a.weight + cell.time_b.weight, ts * cell.time_a.bias + cell.time_b.bias),
        ]
        Ws = torch.cat([(f * 2.0 * LECUN_A) * w for f, w, _ in heads])
        bs = torch.cat([f * (bias - LECUN_A * w.sum(dim=1)) for f, w, bias in heads])
        return [Wqx, Wqm, bq, Ws, bs]

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, hx: Tensor | None = None, timespans: Tensor | float | None = None):
        """Return (output, h_n): output (B, T, out) (batch_first) or the last step when
        return_sequences is False; h_n (B, state_size)."""
        if x.dim() != 3:
            raise ValueError(f"FastCfC expects a batched 3-D input, got shape {tuple(x.shape)}")
        x_tm = (x.transpose(0, 1) if self.batch_first else x).contiguous()  # (T, B, I)
        if hx is None and (timespans is None or isinstance(timespans, (int, float))):
            ts = 1.0 if timespans is None else float(timespans)
            if self.wired:
                y, h_n = WiredScan.apply(x_tm, self.layout, self.batch_first, *self._folded_wired(ts))
            else:
                y, h_n = DenseScan.apply(x_tm, self.batch_first, *self._folded_dense(ts))
        else:
            y, h_n = self._scan_general(x_tm, hx, timespans)  # (T, B, out)
            if self.batch_first:
                y = y.transpose(0, 1)
        y = self.fc(y)
        if not self.return_sequences:
            y = y[:, -1] if self.batch_first else y[-1]
        return y, h_n

    def _scan_general(self, x_tm: Tensor, hx: Tensor | None, timespans: Tensor | float | None) -> tuple[Tensor, Tensor]:
        T, B, _ = x_tm.shape
        if hx is None:
            hx = x_tm.new_zeros(B, self.state_size)
        if timespans is None or isinstance(timespans, (int, float)):
            ts_steps = [1.0 if timespans is None else float(timespans)] * T
        else:
            # laid out like x: (B, T) or (B, T, 1) when batch_first, else (T, B) or (T, B, 1)
            ts = timespans.reshape(timespans.shape[0], timespans.shape[1], -1)
            if ts.shape[2] != 1:
                raise ValueError(f"timespans must hold one value per sample and step, got {tuple(timespans.shape)}")
            ts_steps = list(ts.transpose(0, 1) if self.batch_first else ts)  # T tensors (B, 1)
        if self.wired:
            layers = self.rnn_cell.layers()
            fused = []
            for cell in layers:  # masks applied once per forward, four linears as one
                w1, w2 = cell.masked()
                W = torch.cat([w1, w2, cell.time_a.weight, cell.time_b.weight])  # (4H, in+H)
                b = torch.cat([cell.ff1.bias, cell.ff2.bias, cell.time_a.bias, cell.time_b.bias])
                fused.append((W, b))
            states = list(hx.split(self.rnn_cell.layer_sizes, dim=1))
            outs = []
            for t in range(T):
                u = x_tm[t]
                for l, (W, b) in enumerate(fused):
                    states[l] = _cfc_step(torch.cat([u, states[l]], dim=1), W, b, ts_steps[t])
                    u = states[l]
                outs.append(u)
            return torch.stack(outs), torch.cat(states, dim=1)  # (T, B, motor), (B, state)
        cell = self.rnn_cell
        W = torch.cat([cell.ff1.weight, cell.ff2.weight, cell.time_a.weight, cell.time_b.weight])
        b = torch.cat([cell.ff1.bias, cell.ff2.bias, cell.time_a.bias, cell.time_b.bias])
        h = hx
        outs = []
        for t in range(T):
            h = _cfc_step(cell.backbone(torch.cat([x_tm[t], h], dim=1)), W, b, ts_steps[t])
            outs.append(h)
        return torch.stack(outs), h


def _cfc_step(z: Tensor, W: Tensor, b: Tensor, ts: Tensor | float) -> Tensor:
    """One ncps CfC update from z = [input, h] with fused weights [ff1; ff2; time_a; time_b]."""
    a1, a2, ta, tb = F.linear(z, W, b).chunk(4, dim=1)  # each (B, H)
    g = torch.sigmoid(ta * ts + tb)  # ts: float or (B, 1)
    return torch.lerp(torch.tanh(a1), torch.tanh(a2), g)


def build_cfc(
    impl: Literal["fast", "ncps"],
    wiring: Literal["autoncp", "dense"],
    n_embd: int,
    units: int,
    sparsity: float = 0.5,
    seed: int = 22222,
) -> nn.Module:
    """Return a CfC mapping (B, T, n_embd) -> ((B, T, n_embd), h_n), batch first.

    autoncp: the origin's CfC(n_embd, AutoNCP(units, n_embd)) — the motor layer is n_embd
    wide; dense: CfC(n_embd, units, proj_size=n_embd) — ncps' dense output is the full
    state, so its built-in projection (`fc`) maps it back to n_embd.
    """
    if wiring == "autoncp":
        spec: int | Wiring = AutoNCP(units, n_embd, sparsity_level=sparsity, seed=seed)
        proj = None
    else:
        spec, proj = units, n_embd
    if impl == "fast":
        return FastCfC(n_embd, spec, proj_size=proj, batch_first=True, return_sequences=True)
    from ncps.torch import CfC

    return CfC(n_embd, spec, proj_size=proj, batch_first=True, return_sequences=True)
