"""Tier 1 samples: which (context, one-step delta) pairs exist, which split they belong to.

A representation is one encoder's frames at one frame rate (`Series`). Frames are
standardised per dimension with the mean and std of the train utterances' frames (a
diagonal linear map: it moves model and baseline NLL by the same log-determinant, so ΔNLL
is unchanged, and the MLP inputs are on a common scale across encoders).

A sample is a target frame t (a row of the concatenated frames). For gap k and window W:
context = x[t−k−W+1 … t−k] (W frames ending k frames before t, flattened to W·D);
target = Δx_t = x[t] − x[t−1]. k is a gap before a one-step delta, not a horizon. Every k
uses the same targets, t ≥ W − 1 + max(k) inside its utterance, so no context or delta
ever crosses an utterance boundary and the k's are compared on identical samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audioprobe.runtime.errors import DataError
from audioprobe.phase0.latents import open_latents
from audioprobe.phase0.speaker_split import SpeakerSplit
from audioprobe.phase0.tier1.rates import pool_utterances


@dataclass
class Series:
    """One representation: x (N, D) float32, offsets (U + 1,), per-utterance ids and speakers."""

    x: np.ndarray
    offsets: np.ndarray
    utt_ids: list[str]
    speakers: list[str]
    frame_rate: float

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    def utterance(self, u: int) -> np.ndarray:
        return self.x[self.offsets[u] : self.offsets[u + 1]]


def load_series(store: Path) -> tuple[Series, dict]:
    """Return (Series, encoder.json) of one encoder's latents store (phase0_tier1_latents@<enc>)."""
    latents = open_latents(store, "phase0_tier1_latents")
    table = latents.index
    return Series(latents.x, latents.offsets, table["utterance_id"].to_list(),
                  [str(s) for s in table["speaker_id"].to_list()], float(latents.meta["frame_rate"])), latents.meta


def pooled(series: Series, rate: float) -> Series:
    """Return the series at `rate` (rates.pool_utterances: mean over whole groups, never across utterances)."""
    if abs(rate - series.frame_rate) < 1e-9:
        return series
    x, offsets = pool_utterances(series.x, series.offsets, series.frame_rate, rate)
    return Series(np.asarray(x, dtype=np.float32), offsets, series.utt_ids, series.speakers, rate)


def split_masks(series: Series, split: SpeakerSplit) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, eval) boolean masks over utterances: train = train_utts, eval = eval_utts.

    The held-out utterances of train speakers are in neither (they belong to phase0's
    utterance hold-out). Raises DataError when either side is empty or an eval speaker is absent.
    """
    train_ids, eval_ids = set(split.train_utts), set(split.eval_utts)
    train = np.array([u in train_ids for u in series.utt_ids])
    ev = np.array([u in eval_ids for u in series.utt_ids])
    if not train.any() or not ev.any():
        raise DataError("tier1: no train or no eval utterance of data/phase0/splits is in the tier-1 latents; "
                        "rerun `dvc repro phase0_speaker_split phase0_tier1_latents`")
    missing = sorted(set(split.eval_speakers) - {s for s, e in zip(series.speakers, ev) if e})
    if missing:
        raise DataError(f"tier1: eval speakers without utterances in the tier-1 latents: {missing[:5]}")
    return train, ev


def target_rows(offsets: np.ndarray, utt_mask: np.ndarray, window: int, max_lag: int) -> np.ndarray:
    """Return the global rows t (int64, ascending) of every target of the masked utterances.

    Per utterance [o, o + T): t ∈ [o + W − 1 + max_lag, o + T − 1]; none when T is too short.
    """
    out = []
    first = window - 1 + max_lag
    for u in np.flatnonzero(utt_mask):
        lo, hi = int(offsets[u]) + first, int(offsets[u + 1])
        if hi > lo:
            out.append(np.arange(lo, hi, dtype=np.int64))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def context_rows(t: np.ndarray, k: int, window: int) -> np.ndarray:
    """Return (n, W) rows of each target's context: t − k − W + 1 … t − k, oldest first."""
    return np.asarray(t, dtype=np.int64)[:, None] - k - window + 1 + np.arange(window)[None, :]


def gather(x: torch.Tensor, t: np.ndarray | torch.Tensor, k: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (context (n, W·D), Δx (n, D)) for targets t from frames x (N, D)."""
    t = torch.as_tensor(np.asarray(t), dtype=torch.long, device=x.device)
    rows = t[:, None] - k - window + 1 + torch.arange(window, device=x.device)[None, :]  # (n, W)
    ctx = x[rows].reshape(t.shape[0], -1)  # (n, W, D) -> (n, W·D)
    return ctx, x[t] - x[t - 1]


def standardise(series: Series, train_utts: np.ndarray) -> tuple[Series, np.ndarray, np.ndarray]:
    """Return (standardised series, mean (D,), std (D,)) with stats of the train utterances' frames."""
    rows = np.concatenate([np.arange(series.offsets[u], series.offsets[u + 1]) for u in np.flatnonzero(train_utts)])
    xt = series.x[rows].astype(np.float64)
    mean, std = xt.mean(0), np.maximum(xt.std(0), 1e-6)
    x = ((series.x - mean) / std).astype(np.float32)
    return Series(x, series.offsets, series.utt_ids, series.speakers, series.frame_rate), mean, std


def global_shuffle(n: int, seed: int, epoch: int) -> np.ndarray:
    """Return a permutation of all n train samples for one epoch (seeded by seed and epoch).

    One permutation over every sample at once: consecutive batches mix utterances and
    speakers (the origin streamed speaker-grouped data through a small buffer instead).
    """
    return np.random.default_rng([seed, epoch]).permutation(n)


def eval_sample(t: np.ndarray, speaker_of_t: np.ndarray, per_speaker: int, seed: int) -> np.ndarray:
    """Return eval targets (ascending): up to `per_speaker` drawn at random from EACH eval speaker.

    A stratified cap rather than a prefix: every eval speaker is in the sample, none dominates.
    """
    rng = np.random.default_rng(seed)
    keep = []
    for spk in sorted(set(speaker_of_t.tolist())):
        rows = t[speaker_of_t == spk]
        keep.append(rows if rows.size <= per_speaker else np.sort(rng.choice(rows, per_speaker, replace=False)))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def speaker_of_rows(series: Series, t: np.ndarray) -> np.ndarray:
    """Return the speaker id (object array) of each global row t."""
    utt = np.searchsorted(series.offsets, t, side="right") - 1
    return np.asarray(series.speakers, dtype=object)[utt]


@dataclass
class SampleSet:
    """A representation ready for Tier 1: standardised frames and the train / eval targets."""

    series: Series
    mean: np.ndarray
    std: np.ndarray
    train: np.ndarray  # global target rows of train utterances
    eval: np.ndarray  # stratified eval sample (every eval speaker)
    eval_speakers: list[str]


def build_samples(series: Series, split: SpeakerSplit, window: int, lags: list[int], per_speaker: int,
                  seed: int) -> SampleSet:
    """Return the standardised series with its train targets and its stratified eval sample."""
    train_mask, eval_mask = split_masks(series, split)
    std_series, mean, std = standardise(series, train_mask)
    max_lag = max(lags)
    train = target_rows(series.offsets, train_mask, window, max_lag)
    eval_all = target_rows(series.offsets, eval_mask, window, max_lag)
    if train.size == 0 or eval_all.size == 0:
        raise DataError(f"tier1: no train or eval target at {series.frame_rate} Hz with window {window} and "
                        f"gap {max_lag}; lower phase0.tier1.window or phase0.tier1.lags")
    spk = speaker_of_rows(series, eval_all)
    ev = eval_sample(eval_all, spk, per_speaker, seed)
    covered = sorted(set(speaker_of_rows(series, ev).tolist()))
    return SampleSet(std_series, mean, std, train, ev, covered)
