"""Hand-written forward and backprop-through-time for the CfC with a scalar timespan.

The two autograd Functions here take *folded* weights (see cfc.py): every tanh is written
as 2·sigmoid(2z) − 1 and every state h as 2m − 1, with the factors and offsets moved into
the weights and biases, so one step is matmul -> sigmoid -> lerp and the scan keeps
m = (h + 1)/2. Autograd differentiates the folding itself (a few ops on weight matrices
per forward), so these Functions only return gradients for the folded weights.

Why hand-written: ncps runs about 15 small autograd ops per layer and step; on a 2-core
CPU the graph bookkeeping costs more than the arithmetic. Here the input projection of
all steps is one matmul that pre-fills the preactivation buffer (biases included), the
scan adds only the recurrent terms in place (no copies), the backward runs the
recurrence with 2 ops per group and step, and the input and weight gradients are a few
matmuls over all time×batch rows at the end.

Wired scan, wavefront layout. An NCP wiring is a chain of L layers (inter -> command ->
motor); layer l at time t reads [m_{l-1}(t), m_l(t-1)] (layer 0 reads x(t) and
m_0(t-1)). The time-major state buffer A[k] = [m_0(k-1), m_1(k-2), ..., m_{L-1}(k-L)] is
skewed so that at wave k every layer l (working on time k - l) reads one contiguous
column window of A[k] and writes its new state into A[k+1]: no concatenation, no copy.
Layers are fused into groups (one matmul each, zero blocks where a layer does not read a
column); waves k < l compute throw-away values for layer l, whose slots are reset to the
initial state (m = 1/2, i.e. h = 0) and whose gradients are cut in backward. Waves k >= T
compute throw-away values for the first layers; nothing valid reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

INIT_M = 0.5  # h0 = 0  <=>  m0 = (h0 + 1)/2
_sigmoid_backward = torch.ops.aten.sigmoid_backward


@dataclass(frozen=True)
class WaveLayout:
    """Column layout of the wavefront state buffer for a chain of layers fused into groups.

    slot_cols[l] = first column of m_l in A, slot_cols[L] = width of A. Group g covers
    layers groups[g][0] .. groups[g][1]; group 0 also takes the input x.
    """

    input_size: int
    layer_sizes: tuple[int, ...]
    groups: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        flat = [l for a, b in self.groups for l in range(a, b + 1)]
        if flat != list(range(len(self.layer_sizes))) or any(b < a for a, b in self.groups):
            raise ValueError(f"groups must cover layers 0..{len(self.layer_sizes) - 1} in order, got {self.groups}")

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes)

    @property
    def slot_cols(self) -> tuple[int, ...]:
        cols = [0]
        for h in self.layer_sizes:
            cols.append(cols[-1] + h)
        return tuple(cols)

    @property
    def width(self) -> int:
        return self.slot_cols[-1]

    def layer_read_cols(self, l: int) -> tuple[int, int]:
        """Columns of A layer l reads: [m_{l-1}, m_l] (layer 0: m_0; x comes separately)."""
        c = self.slot_cols
        return c[max(l - 1, 0)], c[l + 1]

    def read_cols(self, g: int) -> tuple[int, int]:
        a, b = self.groups[g]
        return self.layer_read_cols(a)[0], self.slot_cols[b + 1]

    def state_cols(self, g: int) -> tuple[int, int]:
        """Columns of A holding the states m_a .. m_b that group g writes."""
        a, b = self.groups[g]
        return self.slot_cols[a], self.slot_cols[b + 1]

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


def _h_from_m(m_tm: Tensor, batch_first: bool) -> Tensor:
    """h = 2m − 1 from a time-major (T, B, H) view, as a new contiguous tensor in the caller's layout."""
    T, B, H = m_tm.shape
    out = m_tm.new_empty((B, T, H) if batch_first else (T, B, H))
    torch.mul(m_tm.transpose(0, 1) if batch_first else m_tm, 2.0, out=out)
    return out.sub_(1.0)


def _gate_coefficients(S: Tensor) -> Tensor:
    """dm/dp for every preactivation p, from sigmoid outputs S = [s1 | s2 | g] (..., 3u).

    m = s1 + g·(s2 − s1) and s = sigmoid(p) give dm/dp1 = (1 − g)·s1', dm/dp2 = g·s2',
    dm/dpg = (s2 − s1)·g' with s' = s(1 − s), i.e. sigmoid_backward(factor, s) per block.
    Returns a new contiguous tensor shaped like S.
    """
    u = S.shape[-1] // 3
    s1, s2, g = S.split(u, dim=-1)
    C = S.new_empty(S.shape)
    c1, c2, cg = C.split(u, dim=-1)
    _sigmoid_backward.grad_input(g, s2, grad_input=c2)
    _sigmoid_backward.grad_input(1.0 - g, s1, grad_input=c1)
    _sigmoid_backward.grad_input(s2 - s1, g, grad_input=cg)
    return C


def _layer0_head_cols(layout: WaveLayout) -> list[slice]:
    """Columns of layer 0's s1, s2 and gate rows within group 0 (layer 0 leads group 0)."""
    u, h0 = layout.group_units(0), layout.layer_sizes[0]
    return [slice(h * u, h * u + h0) for h in range(3)]


class WiredScan(torch.autograd.Function):
    """Scan of a layered (NCP) CfC over time.

    Returns y, the last layer's h for every step ((B, T, H_last) if batch_first else
    (T, B, H_last), contiguous), and h_n (B, sum H), the final states in layer order.
    """

    @staticmethod
    # Under CUDA autocast the scan still runs in fp32 (its out= buffers are fp32 and the
    # recurrence compounds rounding over T steps); outside autocast this is a no-op.
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, x: Tensor, layout: WaveLayout, batch_first: bool, Wx: Tensor, *weights: Tensor):  # type: ignore[override]
        # x: (T, B, I) time-major. Wx: (3·H_0, I) input weights of layer 0, rows [s1 | s2 | gate].
        # weights: per group W (3·units, read width) on A's columns, b (3·units,).
        T, B, I = x.shape
        L = layout.n_layers
        H0 = layout.layer_sizes[0]
        K = T + L - 1  # waves: the last layer finishes time T-1 at wave T+L-2
        n_groups = len(layout.groups)
        Ws, bs = weights[0::2], weights[1::2]
        reads = [layout.read_cols(g) for g in range(n_groups)]
        states = [layout.state_cols(g) for g in range(n_groups)]
        pres = [layout.pre_cols(g) for g in range(n_groups)]
        c1 = layout.slot_cols[1:]

        S = x.new_empty(K, B, layout.pre_width)  # preactivations, then sigmoid outputs
        for g in range(n_groups):
            S[:, :, pres[g][0] : pres[g][1]] = bs[g]
        # all input projections at once, into layer 0's three head blocks of group 0
        x2 = x.reshape(T * B, I)
        S0 = S[:T, :, pres[0][0] : pres[0][1]]
        for h, cols in enumerate(_layer0_head_cols(layout)):
            S0[:, :, cols].view(T * B, -1).addmm_(x2, Wx[h * H0 : (h + 1) * H0].t())
        A = x.new_empty(K + 1, B, layout.width)  # (K+1, B, sum H)
        A[0] = INIT_M
        # Per-wave views made up front by unbind (one C++ call each), not sliced in the loop.
        read, pre, s1, s2, gate, state = [], [], [], [], [], []
        for g in range(n_groups):
            (r0, r1), (q0, q1), (a0, a1) = reads[g], pres[g], states[g]
            u = (q1 - q0) // 3
            read.append(A[:, :, r0:r1].unbind(0))
            pre.append(S[:, :, q0:q1].unbind(0))
            s1.append(S[:, :, q0 : q0 + u].unbind(0))
            s2.append(S[:, :, q0 + u : q0 + 2 * u].unbind(0))
            gate.append(S[:, :, q0 + 2 * u : q1].unbind(0))
            state.append(A[:, :, a0:a1].unbind(0))
        rows = S.unbind(0)
        Wts = [w.t() for w in Ws]  # BLAS reads the transpose in place
        groups = range(n_groups)
        for k in range(K):
            for g in groups:
                pre[g][k].addmm_(read[g][k], Wts[g])
            rows[k].sigmoid_()
            for g in groups:
                torch.lerp(s1[g][k], s2[g][k], gate[g][k], out=state[g][k + 1])
            if k < L - 1:
                # layers l > k have not started: their slots in A[k+1] hold the initial state
                A[k + 1, :, c1[k] :] = INIT_M
        del rows, read, pre, s1, s2, gate, state

        if any(ctx.needs_input_grad):
            # one contiguous block per group: the backward streams through them wave by wave
            Cs = [_gate_coefficients(S[:, :, q0:q1]) for q0, q1 in pres]  # each (K, B, 3·units)
            ctx.save_for_backward(x, A, Wx, *Ws, *Cs)
            ctx.layout = layout
            ctx.batch_first = batch_first
        del S
        # m_l(t) sits at A[t + l + 1]: the last layer's outputs are A[L : L+T], its slot
        c = layout.slot_cols
        y = _h_from_m(A[L : L + T, :, c[L - 1] : c[L]], batch_first)
        h_n = torch.cat([A[T + l, :, c[l] : c[l + 1]] for l in range(L)], dim=1).mul_(2.0).sub_(1.0)  # (B, sum H)
        return y, h_n

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_y: Tensor, grad_h_n: Tensor):  # type: ignore[override]
        layout: WaveLayout = ctx.layout
        n_groups = len(layout.groups)
        x, A, Wx, *rest = ctx.saved_tensors
        Ws, Cs = rest[:n_groups], rest[n_groups:]
        T, B, I = x.shape
        K = A.shape[0] - 1
        L = layout.n_layers
        reads = [layout.read_cols(g) for g in range(n_groups)]
        states = [layout.state_cols(g) for g in range(n_groups)]
        c1 = layout.slot_cols[1:]

        # dA starts as the gradient of the outputs (h = 2m − 1, so twice theirs); the scan adds
        # the recurrent and layer-to-layer terms wave by wave, newest first.
        c = layout.slot_cols
        dA = torch.zeros_like(A)  # (K+1, B, sum H)
        torch.mul(grad_y.transpose(0, 1) if ctx.batch_first else grad_y, 2.0, out=dA[L : L + T, :, c[L - 1] : c[L]])
        for l in range(L):
            dA[T + l, :, c[l] : c[l + 1]].add_(grad_h_n[:, c[l] : c[l + 1]], alpha=2.0)
        dPs = [torch.empty_like(C) for C in Cs]  # gradients wrt the preactivations, (K, B, 3u) each
        d_state, coef, d_pre, d_pre3, d_read = [], [], [], [], []
        for g in range(n_groups):
            (r0, r1), (a0, a1) = reads[g], states[g]
            u = a1 - a0
            d_state.append(dA[:, :, a0:a1].unsqueeze(2).unbind(0))  # K+1 × (B, 1, u)
            coef.append(Cs[g].unflatten(2, (3, u)).unbind(0))  # K × (B, 3, u)
            d_pre3.append(dPs[g].unflatten(2, (3, u)).unbind(0))
            d_pre.append(dPs[g].unbind(0))  # K × (B, 3u)
            d_read.append(dA[:, :, r0:r1].unbind(0))
        groups = range(n_groups)
        for k in range(K - 1, -1, -1):
            if k < L - 1:
                # these slots hold the constant initial state, not the output of wave k
                dA[k + 1, :, c1[k] :] = 0.0
            for g in groups:
                torch.mul(d_state[g][k + 1], coef[g][k], out=d_pre3[g][k])
            for g in groups:
                d_read[g][k].addmm_(d_pre[g][k], Ws[g])
        del d_state, coef, d_pre, d_pre3, d_read

        grads: list[Tensor] = []
        for g in range(n_groups):
            r0, r1 = reads[g]
            dPg = dPs[g].view(K * B, -1)  # (K·B, 3u)
            grads.append(dPg.t() @ A[:K, :, r0:r1].reshape(K * B, r1 - r0))
            grads.append(dPg.sum(0))
        H0 = layout.layer_sizes[0]
        x2 = x.reshape(T * B, I)
        dx = x2.new_zeros(T * B, I) if ctx.needs_input_grad[0] else None
        dWx = torch.empty_like(Wx)
        for h, cols in enumerate(_layer0_head_cols(layout)):
            dPh = dPs[0][:T, :, cols].reshape(T * B, H0)  # (T·B, H_0)
            torch.mm(dPh.t(), x2, out=dWx[h * H0 : (h + 1) * H0])
            if dx is not None:
                dx.addmm_(dPh, Wx[h * H0 : (h + 1) * H0])
        return (dx.view(T, B, I) if dx is not None else None, None, None, dWx, *grads)


class DenseScan(torch.autograd.Function):
    """Scan of a dense CfC with a one-layer backbone.

    Returns y, h for every step ((B, T, H) if batch_first else (T, B, H), contiguous), and
    h_n (B, H).
    """

    @staticmethod
    # Under CUDA autocast the scan still runs in fp32 (its out= buffers are fp32 and the
    # recurrence compounds rounding over T steps); outside autocast this is a no-op.
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, x: Tensor, batch_first: bool, Wqx: Tensor, Wqm: Tensor, bq: Tensor, Ws: Tensor, bs: Tensor):  # type: ignore[override]
        # Backbone q = sigmoid(Wqx·x(t) + Wqm·m(t-1) + bq) (U,); heads s = sigmoid(Ws·q + bs) (3H,)
        T, B, I = x.shape
        U = Wqm.shape[0]
        H = Ws.shape[0] // 3
        Q = x.new_empty(T, B, U)
        torch.addmm(bq, x.reshape(T * B, I), Wqx.t(), out=Q.view(T * B, U))
        S = x.new_empty(T, B, 3 * H)
        S[:] = bs
        A = x.new_empty(T + 1, B, H)
        A[0] = INIT_M
        Wqmt, Wst = Wqm.t(), Ws.t()
        As, Qs, Ss = A.unbind(0), Q.unbind(0), S.unbind(0)
        S1, S2, G = S[:, :, :H].unbind(0), S[:, :, H : 2 * H].unbind(0), S[:, :, 2 * H :].unbind(0)
        for t in range(T):
            Qt, St = Qs[t], Ss[t]
            Qt.addmm_(As[t], Wqmt)
            Qt.sigmoid_()
            St.addmm_(Qt, Wst)
            St.sigmoid_()
            torch.lerp(S1[t], S2[t], G[t], out=As[t + 1])
        del As, Qs, Ss, S1, S2, G
        if any(ctx.needs_input_grad):
            C = _gate_coefficients(S)
            ctx.save_for_backward(x, A, Q, C, Wqx, Wqm, Ws)
            ctx.batch_first = batch_first
        return _h_from_m(A[1:], batch_first), A[T].mul(2.0).sub_(1.0)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_y: Tensor, grad_h_n: Tensor):  # type: ignore[override]
        x, A, Q, C, Wqx, Wqm, Ws = ctx.saved_tensors
        T, B, U = Q.shape
        I = x.shape[-1]
        H = C.shape[-1] // 3
        dA = torch.empty_like(A)  # (T+1, B, H); h = 2m − 1, so twice the output gradients
        dA[0] = 0.0
        torch.mul(grad_y.transpose(0, 1) if ctx.batch_first else grad_y, 2.0, out=dA[1:])
        dA[T].add_(grad_h_n, alpha=2.0)
        dS = torch.empty_like(C)  # (T, B, 3H)
        dU = torch.empty_like(Q)  # (T, B, U)
        dq = Q.new_empty(B, U)
        dAs, dA3 = dA.unbind(0), dA.unsqueeze(2).unbind(0)  # (B, H), (B, 1, H)
        C3, dS3, dSs = C.unflatten(2, (3, H)).unbind(0), dS.unflatten(2, (3, H)).unbind(0), dS.unbind(0)
        Qs, dUs = Q.unbind(0), dU.unbind(0)
        for t in range(T - 1, -1, -1):
            torch.mul(dA3[t + 1], C3[t], out=dS3[t])
            torch.mm(dSs[t], Ws, out=dq)
            _sigmoid_backward.grad_input(dq, Qs[t], grad_input=dUs[t])
            dAs[t].addmm_(dUs[t], Wqm)
        del dAs, dA3, C3, dS3, dSs, Qs, dUs
        dS2 = dS.view(T * B, 3 * H)  # (T·B, 3H)
        dU2 = dU.view(T * B, U)  # (T·B, U)
        x2 = x.reshape(T * B, I)
        dx = (dU2 @ Wqx).view(T, B, I) if ctx.needs_input_grad[0] else None
        return (
            dx,
            None,
            dU2.t() @ x2,
            dU2.t() @ A[:T].reshape(T * B, H),
            dU2.sum(0),
            dS2.t() @ Q.view(T * B, U),
            dS2.sum(0),
        )
