"""Tier 1 training: AdamW over globally shuffled samples, equal epochs for every representation.

Every model (either family, any encoder, rate and gap k) sees its train samples the same
number of times (`epochs` passes; the origin fixed steps, so its 75 Hz EnCodec got ~18 % of
the passes Mimi got). Seeded: the weights from torch.manual_seed(seed), the order from
samples.global_shuffle(seed, epoch). Checkpoints are safetensors with a JSON sidecar.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from audioprobe.phase0.tier1.mdn import GaussianBaseline, MdnNet
from audioprobe.phase0.tier1.samples import gather, global_shuffle
from audioprobe.phase0.tier1.vmf import VmfBaseline, VmfLogNormalNet

FAMILIES = ("vmf", "mdn")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings (params phase0.tier1)."""

    epochs: float = 1.0  # passes over the train samples (may be fractional)
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0


def build_model(family: str, n_in: int, dim: int, hidden: int, components: int = 8) -> torch.nn.Module:
    """Return an untrained model of `family` ('vmf' | 'mdn')."""
    if family == "vmf":
        return VmfLogNormalNet(n_in, dim, hidden=hidden)
    if family == "mdn":
        return MdnNet(n_in, dim, hidden=hidden, components=components)
    raise ValueError(f"unknown tier1 family {family!r} (one of {FAMILIES})")


class ContextFree(torch.nn.Module):
    """A model of the same family and capacity that never sees the context.

    The same network (hidden width, mixture components, heads) with a 1-number input held at
    0, so whatever it learns is a constant: an unconditional C-component MDN, an unconditional
    vMF × LogNormal with a learned mean direction and κ. Trained with the same optimiser, data
    order and passes as the conditioned models, it is the strongest context-free baseline of
    the family, and model − it is what the context adds (the single Gaussian / uniform-direction
    baselines mostly measure how weak they are).
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    @staticmethod
    def _zero(context: torch.Tensor) -> torch.Tensor:
        return context.new_zeros(context.shape[0], 1)

    def forward(self, context: torch.Tensor) -> Any:
        return self.net(self._zero(context))

    def nll(self, context: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return self.net.nll(self._zero(context), delta)

    def outputs(self, context: torch.Tensor, delta: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return self.net.outputs(self._zero(context), delta)

    def point(self, context: torch.Tensor) -> torch.Tensor:
        return self.net.point(self._zero(context))

    def log_magnitude(self, context: torch.Tensor) -> torch.Tensor:
        return self.net.log_magnitude(self._zero(context))


def build_context_free(family: str, dim: int, hidden: int, components: int = 8) -> ContextFree:
    """Return an untrained context-free model of `family` with the conditioned model's capacity."""
    return ContextFree(build_model(family, 1, dim, hidden, components))


def fit_baseline(family: str, delta: np.ndarray) -> VmfBaseline | GaussianBaseline:
    """Return the family's baseline fitted on train Δx (n, D)."""
    return VmfBaseline.fit(delta) if family == "vmf" else GaussianBaseline.fit(delta)


def init_from_baseline(model: torch.nn.Module, baseline: Any, seed: int) -> None:
    """Start the model's marginal heads at its baseline's fit (κ and σ start sensible)."""
    if isinstance(model, ContextFree):
        model = model.net
    if isinstance(model, VmfLogNormalNet):
        model.init_magnitude(baseline.mu_logm, baseline.sigma)
    else:
        model.init_marginal(baseline.mean, baseline.std, seed=seed)


def train_deltas(x: torch.Tensor, t: np.ndarray) -> np.ndarray:
    """Return the train Δx (n, D) as float64 numpy (the baselines' fit)."""
    tt = torch.as_tensor(t, dtype=torch.long, device=x.device)
    return (x[tt] - x[tt - 1]).double().cpu().numpy()


def train(model: torch.nn.Module, x: torch.Tensor, t_train: np.ndarray, k: int, window: int,
          cfg: TrainConfig) -> dict[str, Any]:
    """Train `model` in place; return {steps, epochs, loss_per_epoch (mean train NLL per sample per pass)}.

    x: the standardised frames (N, D) on the training device; t_train: train target rows.
    """
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = int(t_train.size)
    todo = math.ceil(cfg.epochs * n)  # sample visits: `epochs` passes (a fraction is a partial last pass)
    steps, epoch, history = 0, 0, []
    model.train()
    while todo > 0:
        order = t_train[global_shuffle(n, cfg.seed, epoch)][:todo]
        total, count = 0.0, 0
        for s in range(0, order.size, cfg.batch_size):
            ctx, delta = gather(x, order[s : s + cfg.batch_size], k, window)
            loss = model.nll(ctx, delta).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            steps += 1
            total += float(loss.detach()) * delta.shape[0]
            count += delta.shape[0]
        mean = total / max(count, 1)
        if not math.isfinite(mean):
            raise FloatingPointError(f"tier1: training loss is {mean} in pass {epoch}")
        history.append(round(mean, 6))
        todo -= order.size
        epoch += 1
    model.eval()
    return {"steps": steps, "epochs": cfg.epochs, "loss_per_epoch": history}


def save_checkpoint(path: Path, model: torch.nn.Module, extra: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write `path`.safetensors (weights + named extra arrays) and `path`.json (meta, sorted keys)."""
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in extra.items()})
    save_file(tensors, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, dict[str, np.ndarray], dict[str, Any]]:
    """Return (model, extra arrays, meta) written by save_checkpoint."""
    meta = json.loads(path.with_suffix(".json").read_text())
    tensors = load_file(str(path.with_suffix(".safetensors")))
    model = build_model(meta["family"], meta["n_in"], meta["dim"], meta["hidden"], meta.get("components", 8))
    model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    model.eval()
    extra = {k: v.numpy() for k, v in tensors.items() if not k.startswith("net.")}
    return model, extra, meta


def baseline_from(meta: dict[str, Any], extra: dict[str, np.ndarray]) -> VmfBaseline | GaussianBaseline:
    """Return the baseline stored with a checkpoint."""
    if meta["family"] == "vmf":
        return VmfBaseline(meta["baseline"]["mu_logm"], meta["baseline"]["sigma"])
    return GaussianBaseline(extra["baseline.mean"], extra["baseline.std"])
