"""The kws keyword spotter: mel frames -> CfC blocks with an optional LIF gate -> word logits.

Lane README, "Model": Linear(n_mels -> n_embd) -> n_layer pre-norm residual blocks ->
mean over time -> Linear(n_embd -> n_classes). One block:

    x = x + Dropout(Gate(CfC(LayerNorm(x))))
    x = x + MLP(LayerNorm(x))          MLP: n_embd -> mlp_hidden -> n_embd, GELU

Gate is the LIF gate ("lif") or the identity ("base", fire ≡ 1). Every nn.Linear,
including the ones inside the CfC, starts from N(0, 0.02) with zero bias, as in the origin.
"""

from __future__ import annotations

from torch import Tensor, nn

from audioprobe.cells.cfc import build_cfc
from audioprobe.cells.lif import IdentityGate, LIFGate
from audioprobe.parallel.dist import ShardedDropout
from audioprobe.kws.params import CONDITIONS, Condition, KwsModel

INIT_STD = 0.02


class KwsBlock(nn.Module):
    """One pre-norm residual block; forward returns (x, fire)."""

    def __init__(self, cfg: KwsModel, condition: Condition):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.cfc = build_cfc(cfg.cfc_impl, cfg.wiring, cfg.n_embd, cfg.units, cfg.wiring_sparsity, cfg.wiring_seed)
        self.gate: LIFGate | IdentityGate = (
            LIFGate(cfg.n_embd, norm_preserve=cfg.lif.norm_preserve) if condition == "lif" else IdentityGate()
        )
        # nn.Dropout in one process; under DDP the mask of the whole global batch (audioprobe.parallel.dist).
        self.drop = ShardedDropout(cfg.dropout)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, cfg.mlp_hidden),
            nn.GELU(),
            nn.Linear(cfg.mlp_hidden, cfg.n_embd),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, _ = self.cfc(self.ln_1(x))  # (B, T, n_embd)
        h, fire = self.gate(h)
        x = x + self.drop(h)
        x = x + self.mlp(self.ln_2(x))
        return x, fire


class KwsNet(nn.Module):
    """Keyword spotter; forward(x (B, T, n_mels)) -> (logits (B, n_classes), fires per layer)."""

    def __init__(self, cfg: KwsModel, condition: Condition, n_classes: int):
        super().__init__()
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.cfg = cfg
        self.condition = condition
        self.n_classes = n_classes
        self.proj = nn.Linear(cfg.n_mels, cfg.n_embd)
        self.blocks = nn.ModuleList(KwsBlock(cfg, condition) for _ in range(cfg.n_layer))
        self.head = nn.Linear(cfg.n_embd, n_classes)
        self.apply(_init_linear)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x: (B, T, n_mels) log-mel frames. Returns logits (B, n_classes) and one fire
        tensor (B, T, n_embd) per block (all ones for the base condition)."""
        if x.dim() != 3 or x.shape[-1] != self.cfg.n_mels:
            raise ValueError(f"expected input (B, T, {self.cfg.n_mels}), got {tuple(x.shape)}")
        h = self.proj(x)  # (B, T, n_embd)
        fires: list[Tensor] = []
        for block in self.blocks:
            h, fire = block(h)
            fires.append(fire)
        logits = self.head(h.mean(dim=1))  # (B, n_classes)
        return logits, fires

    def thresholds(self) -> list[Tensor]:
        """Learned LIF thresholds θ = |t|·0.1, one detached (n_embd,) tensor per block; [] for base."""
        return [b.gate.threshold.detach().clone() for b in self.blocks if isinstance(b.gate, LIFGate)]


def _init_linear(module: nn.Module) -> None:
    # nn.Module.apply visits the CfC's internal nn.Linear layers too, overriding ncps'
    # xavier init, exactly as the origin's model-wide init did.
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_kws_net(cfg: KwsModel, condition: Condition, n_classes: int) -> KwsNet:
    """Return a freshly initialised KwsNet (seed torch before calling for a reproducible init)."""
    return KwsNet(cfg, condition, n_classes)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on 2-D (and larger) weights only.

    Biases, LayerNorm parameters and the LIF per-unit parameters (all 1-D) are not decayed;
    frozen tensors (ncps registers its wiring masks as parameters with requires_grad=False)
    are left out.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]

