"""Hand-written forward and backprop-through-time for the CfC with a scalar timespan.

The two autograd Functions here take *folded* weights (see cfc.py): every tanh is written
as 2·sigmoid(2z) − 1 and every state h as 2m − 1, with the factors and offsets moved into
the weights and biases, so one step is matmul -> sigmoid -> lerp and the scan keeps
m = (h + 1)/2. Autograd differentiates the folding itself (a few ops on weight matrices
per forward), so these Functions only return gradients for the folded weights.

Why hand-written: ncps runs about 15 small autograd ops per layer and step; on a 2-core
CPU the graph bookkeeping costs more than the arithmetic. Here the forward writes into
preallocated buffers, the backward runs the recurrence with 2 ops per group and step, and
every weight gradient is one matmul over all time×batch rows at the end.

Wired scan, wavefront layout. An NCP wiring is a chain of L layers (inter -> command ->
motor); layer l at time t reads [m_{l-1}(t), m_l(t-1)] (layer 0 reads [x(t), m_0(t-1)]).
A single time-major buffer A[k] = [x(k), m_0(k-1), m_1(k-2), ..., m_{L-1}(k-L)] is
skewed so that at wave k every layer l (working on time k - l) reads one contiguous
column window of A[k] and writes its new state into A[k+1]: no concatenation, no copy.
Layers are fused into groups (one matmul each, zero blocks where a layer does not read a
column); waves k < l compute throw-away values for layer l, whose slots are reset to the
initial state (m = 1/2, i.e. h = 0) and whose gradients are cut in backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

INIT_M = 0.5  # h0 = 0  <=>  m0 = (h0 + 1)/2


@dataclass(frozen=True)
class WaveLayout:
    """Column layout of the wavefront buffer for a chain of layers, fused into groups.

    slot_cols[j] = first column of slot j of A (slot 0: x, slot j >= 1: m_{j-1});
    slot_cols[L + 1] = width of A. Group g covers layers groups[g][0] .. groups[g][1].
    """

    input_size: int
    layer_sizes: tuple[int, ...]
    groups: tuple[tuple[int, int], ...]

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes)

    @property
    def slot_cols(self) -> tuple[int, ...]:
        cols = [0, self.input_size]
        for h in self.layer_sizes:
            cols.append(cols[-1] + h)
        return tuple(cols)

    @property
    def width(self) -> int:
        return self.slot_cols[-1]

    def read_cols(self, g: int) -> tuple[int, int]:
        """Columns of A that group g reads: slots first .. last + 1."""
        a, b = self.groups[g]
        return self.slot_cols[a], self.slot_cols[b + 2]

    def state_cols(self, g: int) -> tuple[int, int]:
        """Columns of A holding the states m_a .. m_b that group g writes."""
        a, b = self.groups[g]
        return self.slot_cols[a + 1], self.slot_cols[b + 2]

    def group_units(self, g: int) -> int:
        a, b = self.groups[g]
        return sum(self.layer_sizes[a : b + 1])

    def pre_cols(self, g: int) -> tuple[int, int]:
        """Columns of the preactivation buffer for group g: [s1 | s2 | gate], 3·units wide."""
        start = 3 * sum(self.group_units(i) for i in range(g))
        return start, start + 3 * self.group_units(g)

    @property
    def pre_width(self) -> int:
        return 3 * sum(self.layer_sizes)


def _gate_coefficients(s: Tensor, units: int) -> Tensor:
    """d(lerp(s1, s2, g))/d(preactivations) for sigmoid outputs s = [s1 | s2 | g] (..., 3·units).

    With m = s1 + g·(s2 − s1) and s = sigmoid(p): dm/dp1 = (1 − g)·s1(1 − s1),
    dm/dp2 = g·s2(1 − s2), dm/dpg = (s2 − s1)·g(1 − g).
    """
    s1, s2, g = s.split(units, dim=-1)
    c = torch.empty_like(s)
    c1, c2, cg = c.split(units, dim=-1)
    torch.mul(s1 * (1.0 - s1), 1.0 - g, out=c1)
    torch.mul(s2 * (1.0 - s2), g, out=c2)
    torch.mul(g * (1.0 - g), s2 - s1, out=cg)
    return c


class WiredScan(torch.autograd.Function):
    """Scan of a layered (NCP) CfC over time; returns the whole wavefront buffer A."""

    @staticmethod
    def forward(ctx, x: Tensor, layout: WaveLayout, *weights: Tensor) -> Tensor:  # type: ignore[override]
        # x: (T, B, I) time-major. weights: per group (W (3·units, read width), b (3·units,)).
        T, B, I = x.shape
        L = layout.n_layers
        K = T + L - 1  # waves: the last layer finishes time T-1 at wave T+L-2
        cols = layout.slot_cols
        n_groups = len(layout.groups)
        Ws = weights[0::2]
        bs = weights[1::2]
        Wts = [w.t() for w in Ws]  # BLAS reads the transpose in place

        A = x.new_empty(K + 1, B, layout.width)  # (K+1, B, I + sum H)
        A[:T, :, :I] = x
        A[T:, :, :I] = 0.0
        A[0, :, I:] = INIT_M
        S = x.new_empty(K, B, layout.pre_width)  # sigmoid outputs per wave (K, B, 3·sum H)
        reads = [layout.read_cols(g) for g in range(n_groups)]
        states = [layout.state_cols(g) for g in range(n_groups)]
        pres = [layout.pre_cols(g) for g in range(n_groups)]
        units = [layout.group_units(g) for g in range(n_groups)]
        for k in range(K):
            Ak, Sk, An = A[k], S[k], A[k + 1]
            for g in range(n_groups):
                torch.addmm(bs[g], Ak[:, reads[g][0] : reads[g][1]], Wts[g], out=Sk[:, pres[g][0] : pres[g][1]])
            Sk.sigmoid_()
            for g in range(n_groups):
                p0, u = pres[g][0], units[g]
                torch.lerp(
                    Sk[:, p0 : p0 + u],
                    Sk[:, p0 + u : p0 + 2 * u],
                    Sk[:, p0 + 2 * u : p0 + 3 * u],
                    out=An[:, states[g][0] : states[g][1]],
                )
            if k < L - 1:
                # layers l > k have not started: their slot in A[k+1] is still the initial state
                An[:, cols[k + 2] :] = INIT_M

        if any(ctx.needs_input_grad):
            C = torch.empty_like(S)
            for g in range(n_groups):
                p0, p1 = pres[g]
                C[:, :, p0:p1] = _gate_coefficients(S[:, :, p0:p1], units[g])
            ctx.save_for_backward(A, C, *Ws)
            ctx.layout = layout
            ctx.T = T
        return A

    @staticmethod
    def backward(ctx, grad_A: Tensor):  # type: ignore[override]
        A, C, *Ws = ctx.saved_tensors
        layout: WaveLayout = ctx.layout
        T = ctx.T
        K, B, _ = C.shape
        L = layout.n_layers
        I = layout.input_size
        cols = layout.slot_cols
        n_groups = len(layout.groups)
        reads = [layout.read_cols(g) for g in range(n_groups)]
        states = [layout.state_cols(g) for g in range(n_groups)]
        pres = [layout.pre_cols(g) for g in range(n_groups)]
        units = [layout.group_units(g) for g in range(n_groups)]

        # dA starts as the gradient of whatever read A (outputs, final state); the scan adds
        # the recurrent and layer-to-layer terms wave by wave, newest first.
        dA = grad_A.contiguous().clone()  # (K+1, B, width)
        dP = torch.empty_like(C)  # gradient wrt the preactivations (K, B, 3·sum H)
        for k in range(K - 1, -1, -1):
            dAn, dAk, Ck, dPk = dA[k + 1], dA[k], C[k], dP[k]
            if k < L - 1:
                # these slots hold the constant initial state, not the output of wave k
                dAn[:, cols[k + 2] :] = 0.0
            for g in range(n_groups):
                p0, p1 = pres[g]
                u = units[g]
                torch.mul(
                    dAn[:, states[g][0] : states[g][1]].unsqueeze(1),  # (B, 1, u)
                    Ck[:, p0:p1].view(B, 3, u),
                    out=dPk[:, p0:p1].view(B, 3, u),
                )
            for g in range(n_groups):
                dAk[:, reads[g][0] : reads[g][1]].addmm_(dPk[:, pres[g][0] : pres[g][1]], Ws[g])

        grads: list[Tensor | None] = []
        for g in range(n_groups):
            p0, p1 = pres[g]
            r0, r1 = reads[g]
            dPg = dP[:, :, p0:p1].reshape(K * B, p1 - p0)  # (K·B, 3u), a strided view
            Ag = A[:K, :, r0:r1].reshape(K * B, r1 - r0)  # (K·B, read width)
            grads.append(dPg.t() @ Ag)
            grads.append(dPg.sum(0))
        dx = dA[:T, :, :I]  # (T, B, I)
        return (dx, None, *grads)


class DenseScan(torch.autograd.Function):
    """Scan of a dense CfC with a one-layer backbone; returns the buffer A (T+1, B, I+H)
    with A[t] = [x(t), m(t-1)], so A[1:, :, I:] holds m(0..T-1)."""

    @staticmethod
    def forward(ctx, x: Tensor, Wq: Tensor, bq: Tensor, Ws: Tensor, bs: Tensor) -> Tensor:  # type: ignore[override]
        # x: (T, B, I). Backbone q = sigmoid(A[t] Wq^T + bq) (U,); heads s = sigmoid(q Ws^T + bs) (3H,)
        T, B, I = x.shape
        U = Wq.shape[0]
        H = Ws.shape[0] // 3
        A = x.new_empty(T + 1, B, I + H)  # (T+1, B, I+H)
        A[:T, :, :I] = x
        A[T, :, :I] = 0.0
        A[0, :, I:] = INIT_M
        Q = x.new_empty(T, B, U)
        S = x.new_empty(T, B, 3 * H)
        Wqt, Wst = Wq.t(), Ws.t()
        for t in range(T):
            Qt, St = Q[t], S[t]
            torch.addmm(bq, A[t], Wqt, out=Qt)
            Qt.sigmoid_()
            torch.addmm(bs, Qt, Wst, out=St)
            St.sigmoid_()
            torch.lerp(St[:, :H], St[:, H : 2 * H], St[:, 2 * H :], out=A[t + 1, :, I:])
        if any(ctx.needs_input_grad):
            C = _gate_coefficients(S, H)
            Dq = Q * (1.0 - Q)  # sigmoid'(backbone preactivation)
            ctx.save_for_backward(A, Q, Dq, C, Wq, Ws)
        return A

    @staticmethod
    def backward(ctx, grad_A: Tensor):  # type: ignore[override]
        A, Q, Dq, C, Wq, Ws = ctx.saved_tensors
        T, B, U = Q.shape
        H = C.shape[-1] // 3
        I = A.shape[-1] - H
        dA = grad_A.contiguous().clone()  # (T+1, B, I+H)
        dS = torch.empty_like(C)  # (T, B, 3H)
        dU = torch.empty_like(Q)  # (T, B, U)
        dq = Q.new_empty(B, U)
        for t in range(T - 1, -1, -1):
            torch.mul(dA[t + 1, :, I:].unsqueeze(1), C[t].view(B, 3, H), out=dS[t].view(B, 3, H))
            torch.mm(dS[t], Ws, out=dq)
            torch.mul(dq, Dq[t], out=dU[t])
            dA[t].addmm_(dU[t], Wq)
        dS2 = dS.view(T * B, 3 * H)  # (T·B, 3H)
        dU2 = dU.view(T * B, U)  # (T·B, U)
        dWs = dS2.t() @ Q.view(T * B, U)
        dWq = dU2.t() @ A[:T].reshape(T * B, I + H)
        return dA[:T, :, :I], dWq, dU2.sum(0), dWs, dS2.sum(0)
