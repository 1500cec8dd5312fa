"""The factorial clip set: duration x SNR x class cells, cut from split-separated sources and mixed with noise.

Every candidate clip is
1. cut from a source file at a start where the source is active (energy-guided: a SPEECH
   clip really holds speech, a NONSPEECH clip really holds its sound, never silence),
2. mixed with a background-noise segment at the cell's SNR (`audio.mixing.mix_at_snr`,
   the same for both classes, so the noise level never tells the label),
3. peak-normalised (so loudness never tells the label either).
The clean segment is written beside the mix for the hygiene stage. Sources are split
train/dev/test by group (speaker, recording, file) before any clip is cut, so no
speaker and no source file reaches two splits. The stage writes `clips_per_cell x
oversample` candidates per cell; hygiene keeps `clips_per_cell`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import polars as pl

from audioprobe.audio.io import write_audio
from audioprobe.audio.mixing import mix_at_snr
from audioprobe.detect.params import DetectDataset
from audioprobe.detect.segments import eligible_starts, frame_activity
from audioprobe.detect.labels import NONSPEECH, SPEECH, SR
from audioprobe.detect.sources import Source, Waves, background_files, catalogue
from audioprobe.detect.splits import SPLITS, assign_groups, split_counts
from audioprobe.runtime.errors import DataError

COLUMNS = ["clip_id", "split", "label", "duration_ms", "snr_db", "nonspeech_type", "source_dataset",
           "source_file", "group", "speaker", "offset_ms", "noise_file", "noise_offset_ms", "audio", "clean"]


def clip_id(label: str, dur: int, snr: float, split: str, k: int) -> str:
    return f"{label[0].lower()}{dur:04d}ms_{snr:+g}db_{split}_{k:03d}".replace(".", "p")


def equal_shares(n: int, names: list[str]) -> dict[str, int]:
    """n split into len(names) near-equal integer shares, earlier names first to get the remainder."""
    q, r = divmod(n, len(names))
    return {name: q + (i < r) for i, name in enumerate(names)}


class Pools:
    """Eligible (source, start frames) per (kind, split, duration), computed lazily."""

    def __init__(self, sources: list[Source], split_of: dict[str, str], waves: Waves, cfg: DetectDataset):
        self.sources, self.split_of, self.waves, self.cfg = sources, split_of, waves, cfg
        self.frame = SR * cfg.frame_ms // 1000
        self._activity: dict[str, np.ndarray] = {}
        self._cache: dict[tuple, list[tuple[Source, np.ndarray]]] = {}
        self.too_short: dict[int, int] = defaultdict(int)  # duration -> sources shorter than it

    def activity(self, s: Source) -> np.ndarray:
        if s.file_id not in self._activity:
            self._activity[s.file_id] = frame_activity(self.waves(s.dataset, s.relpath), self.frame, self.cfg.active_db)
        return self._activity[s.file_id]

    def get(self, kind: str, split: str, dur: int) -> list[tuple[Source, np.ndarray]]:
        key = (kind, split, dur)
        if key not in self._cache:
            need = self.cfg.speech_min_active if kind == "speech" else self.cfg.nonspeech_min_active
            win = max(1, dur // self.cfg.frame_ms)
            pool = []
            for s in self.sources:
                if s.kind != kind or self.split_of[s.group] != split:
                    continue
                act = self.activity(s)
                if act.size < win:
                    self.too_short[dur] += 1
                    continue
                starts = eligible_starts(act, win, need)
                if starts.size:
                    pool.append((s, starts))
            self._cache[key] = pool
        return self._cache[key]


@dataclass(frozen=True)
class Cell:
    """One cell of the factorial design, split included: the unit a generator is seeded by."""

    duration_ms: int
    snr_db: float
    label: str
    split: str

    def rng(self, seed: int) -> np.random.Generator:
        """The cell's own generator, seeded by its coordinates alone (never by the cells before it)."""
        return np.random.default_rng([seed, 7, self.duration_ms, int(round(self.snr_db * 100)) + 10000,
                                      self.label == SPEECH, SPLITS.index(self.split)])


def design(cfg: DetectDataset) -> list[Cell]:
    """Every cell: duration x SNR x class x split, in the order of the clip table's rows."""
    return [Cell(dur, snr, label, split)
            for dur, snr, label, split in product(cfg.durations_ms, cfg.snrs_db, (SPEECH, NONSPEECH), SPLITS)]


def background_pools(cfg: DetectDataset, waves: Waves, files: list[str],
                     frame: int) -> dict[int, list[tuple[str, np.ndarray]]]:
    """Per duration, the background files with an active stretch of that length and their eligible starts.

    Each file's frame activity is computed once; only the window (the duration) differs.
    """
    acts = {rel: frame_activity(waves("speech_commands", rel), frame, cfg.active_db) for rel in files}
    out: dict[int, list[tuple[str, np.ndarray]]] = {}
    for dur in cfg.durations_ms:
        win = max(1, dur // cfg.frame_ms)
        out[dur] = [(rel, st) for rel in files if (st := eligible_starts(acts[rel], win, 0.5)).size]
        if not out[dur]:
            raise DataError(f"detect.dataset.background_files: no file holds an active {dur} ms stretch")
    return out


def cell_sources(cell: Cell, n_cand: int, cfg: DetectDataset, pools: Pools) -> list[tuple[str, int, list]]:
    """(source type, quota, pool of (source, eligible starts)) of a cell, in the order its clips are drawn.

    SPEECH: the speech datasets in equal shares among those with >= min_files_per_cell files
    that can fill the cell (all of them when none can); NONSPEECH: the non-speech types in
    equal shares.
    """
    if cell.label == SPEECH:
        pool_all = pools.get("speech", cell.split, cell.duration_ms)
        by_ds = {d: [p for p in pool_all if p[0].dataset == d] for d in cfg.speech_sources}
        usable = [d for d, p in by_ds.items() if len({q[0].file_id for q in p}) >= cfg.min_files_per_cell]
        what = "speech (" + ", ".join(cfg.speech_sources) + ")"
        return [(what, q, by_ds[d]) for d, q in equal_shares(n_cand, usable or list(by_ds)).items()]
    return [(t, q, pools.get(t, cell.split, cell.duration_ms))
            for t, q in equal_shares(n_cand, list(cfg.nonspeech_types)).items()]


def split_groups(sources: list[Source], cfg: DetectDataset) -> dict[str, str]:
    """Split of every source group, assigned per (dataset, kind) stratum before any clip is cut."""
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in sources:
        strata[(s.dataset, s.kind)].append(s.group)
    split_of: dict[str, str] = {}
    for (dataset, kind), groups in sorted(strata.items()):
        split_of.update(assign_groups(groups, cfg.split_fractions, cfg.seed))
    return split_of


def build(cfg: DetectDataset, roots: dict[str, Path], out: Path) -> pl.DataFrame:
    """Write every candidate clip (mix + clean segment) under `out` and return the clip table.

    Raises DataError naming the cell, split and source type when a cell cannot be
    filled from at least `min_files_per_cell` distinct source files.
    """
    sources = catalogue(roots, cfg.speech_sources, cfg.nonspeech_types, cfg.noise_colours, cfg.colour_files)
    waves = Waves(roots, cfg.seed)
    pools = Pools(sources, split_groups(sources, cfg), waves, cfg)
    bg_pool = background_pools(cfg, waves, background_files(roots["speech_commands"], cfg.background_files),
                               pools.frame)
    per_split = dict(zip(SPLITS, split_counts(cfg.clips_per_cell, cfg.split_fractions)))
    rows: list[dict] = []
    for cell in design(cfg):
        rows += fill_cell(cell, math.ceil(per_split[cell.split] * cfg.oversample), cfg, pools, waves,
                          bg_pool[cell.duration_ms], out)
    return pl.DataFrame(rows, schema_overrides={"offset_ms": pl.Float64, "noise_offset_ms": pl.Float64}).select(COLUMNS)


def fill_cell(cell: Cell, n_cand: int, cfg: DetectDataset, pools: Pools, waves: Waves,
              backgrounds: list[tuple[str, np.ndarray]], out: Path) -> list[dict]:
    """Cut, mix and write the `n_cand` candidate clips of one cell; return their table rows.

    The draws come from the cell's own generator in a fixed order, which the committed clips
    depend on: per source type (in `cell_sources` order) one permutation of its pool, then
    per clip the source start, the background file and the background start.
    """
    dur, snr, label, split = cell.duration_ms, cell.snr_db, cell.label, cell.split
    n = SR * dur // 1000
    rng = cell.rng(cfg.seed)
    rows: list[dict] = []
    for what, quota, pool in cell_sources(cell, n_cand, cfg, pools):
        files = {p[0].file_id for p in pool}
        if quota and len(files) < cfg.min_files_per_cell:
            raise DataError(
                f"detect.dataset: cell {label} {dur} ms {snr:+g} dB, split {split}: "
                f"{len(files)} {what} source file(s) with an active {dur} ms segment, "
                f"need >= {cfg.min_files_per_cell} (min_files_per_cell); add source files or "
                f"lower detect.dataset.durations_ms / min_active"
            )
        order = rng.permutation(len(pool))
        for i in range(quota):
            src, starts = pool[order[i % len(pool)]]
            start = int(starts[rng.integers(0, starts.size)]) * pools.frame
            seg = waves(src.dataset, src.relpath)[start : start + n]
            # the background segment is energy-guided too: never a silent stretch
            bg_rel, bg_starts = backgrounds[int(rng.integers(0, len(backgrounds)))]
            bg_start = int(bg_starts[rng.integers(0, bg_starts.size)]) * pools.frame
            noise = waves("speech_commands", bg_rel)[bg_start : bg_start + n]
            mixed = mix_at_snr(seg, noise, snr)
            mixed = mixed / np.max(np.abs(mixed)) * cfg.peak
            cid = clip_id(label, dur, snr, split, len(rows))
            write_audio(out / "audio" / f"{cid}.wav", mixed, SR)
            write_audio(out / "clean" / f"{cid}.wav", seg, SR)
            rows.append(dict(
                clip_id=cid, split=split, label=label, duration_ms=dur, snr_db=float(snr),
                nonspeech_type="" if label == SPEECH else src.kind,
                source_dataset=src.dataset, source_file=src.file_id, group=src.group,
                speaker=src.speaker, offset_ms=1000 * start / SR, noise_file=f"speech_commands/{bg_rel}",
                noise_offset_ms=1000 * bg_start / SR,
                audio=f"audio/{cid}.wav", clean=f"clean/{cid}.wav",
            ))
    return rows


def candidate_counts(table: pl.DataFrame) -> pl.DataFrame:
    """Candidates per cell (label x duration x SNR), split and non-speech type."""
    return (table.group_by("label", "duration_ms", "snr_db", "split", "nonspeech_type", "source_dataset")
            .len("candidates").sort("label", "duration_ms", "snr_db", "split", "nonspeech_type", "source_dataset"))
