"""The factorial clip set: duration x SNR x class cells, cut from split-separated sources and mixed with noise.

Every candidate clip is
1. cut from a source file at a start where the source is active (energy-guided: a SPEECH
   clip really holds speech, a NONSPEECH clip really holds its sound, never silence),
2. mixed with a background-noise segment at the cell's SNR (`audio.mixing.mix_at_snr`,
   the same for both classes, so the noise level never tells the label),
3. peak-normalised (so loudness never tells the label either).
The clean segment is written beside the mix for the hygiene stage. Sources are split
train/dev/test by group (speaker, recording, file) before any clip is cut, so no
speaker and no source file reaches two splits. Each cell x split gets `clips x oversample`
candidates first; when too few of them pass the hygiene rule (`detect.hygiene`, applied here to
the clean segment exactly as `detect_hygiene` will), more are drawn until the rule can fill the
cell with equal shares per source type, or `clips x max_oversample` are drawn. Hygiene then
keeps `clips_per_cell` per cell.
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
from audioprobe.detect.hygiene import clip_activity, keeps
from audioprobe.detect.params import DetectDataset, DetectHygiene
from audioprobe.detect.segments import eligible_starts, frame_activity
from audioprobe.detect.labels import NONSPEECH, SPEECH, SR
from audioprobe.detect.sources import Source, Waves, background_files, catalogue, esc50_excluded_files
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

    def rng(self, seed: int, stratum: int | None = None) -> np.random.Generator:
        """The cell's own generator, seeded by its coordinates alone (never by the cells before it);
        with `stratum`, the top-up generator of that source type of the cell."""
        key = [seed, 7, self.duration_ms, int(round(self.snr_db * 100)) + 10000, self.label == SPEECH,
               SPLITS.index(self.split)]
        return np.random.default_rng(key if stratum is None else [*key, 1, stratum])


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


def speech_used(eligible: dict[str, int], min_files: int) -> list[str]:
    """The speech datasets a SPEECH cell draws from, given each one's eligible files in the cell's split:
    those with >= min_files, or all of them when none has (the fill then stops naming the cell)."""
    return [d for d, n in eligible.items() if n >= min_files] or list(eligible)


def source_use(pools: Pools, cfg: DetectDataset) -> list[dict]:
    """Per source (speech dataset or non-speech type) x duration x split: how many of its files can give a clip.

    `files` in the split; `too_short` (shorter than the duration), `no_active` (long enough, but no
    stretch with min_active of its frames active), `eligible` (the rest); `longest_ms`, its longest
    file; `used`: whether the cells draw from it (a speech dataset with fewer than
    min_files_per_cell eligible files is left out of the cell while another can fill it).
    """
    names = [*cfg.speech_sources, *cfg.nonspeech_types]
    rows = []
    for dur in cfg.durations_ms:
        win = max(1, dur // cfg.frame_ms)
        for split in SPLITS:
            block = []
            for name in names:
                speech = name in cfg.speech_sources
                need = cfg.speech_min_active if speech else cfg.nonspeech_min_active
                files = too_short = no_active = longest = 0
                for src in pools.sources:
                    if (src.kind != "speech" or src.dataset != name) if speech else src.kind != name:
                        continue
                    if pools.split_of[src.group] != split:
                        continue
                    act = pools.activity(src)
                    files += 1
                    longest = max(longest, act.size * cfg.frame_ms)
                    if act.size < win:
                        too_short += 1
                    elif eligible_starts(act, win, need).size == 0:
                        no_active += 1
                block.append({"source": name, "label": SPEECH if speech else NONSPEECH, "duration_ms": dur,
                              "split": split, "files": files, "too_short": too_short, "no_active": no_active,
                              "eligible": files - too_short - no_active, "longest_ms": longest})
            used = speech_used({r["source"]: r["eligible"] for r in block if r["label"] == SPEECH},
                               cfg.min_files_per_cell)
            for r in block:
                r["used"] = r["source"] in used if r["label"] == SPEECH else r["eligible"] >= cfg.min_files_per_cell
            rows += block
    return rows


def left_out_lines(use: list[dict]) -> list[str]:
    """One line per source the cells leave out at some duration or split, saying where and why."""
    lines = []
    for name in dict.fromkeys(r["source"] for r in use):
        rs = [r for r in use if r["source"] == name]
        out = [r for r in rs if not r["used"]]
        if not out:
            continue
        parts = []
        for dur in dict.fromkeys(r["duration_ms"] for r in out):
            at = [r for r in out if r["duration_ms"] == dur]
            where = "every split" if len(at) == len(SPLITS) else ", ".join(r["split"] for r in at)
            short, idle = sum(r["too_short"] for r in at), sum(r["no_active"] for r in at)
            why = ", ".join([f"{sum(r['eligible'] for r in at)} of {sum(r['files'] for r in at)} files hold an "
                             f"active {dur} ms stretch"]
                            + ([f"{short} are shorter"] if short else [])
                            + ([f"{idle} have no {dur} ms stretch active enough (detect.dataset.*_min_active)"]
                               if idle else []))
            parts.append(f"{dur} ms in {where} ({why})")
        lines.append(f"{name} left out of the {rs[0]['label']} cells at {'; '.join(parts)}; "
                     f"its longest file lasts {max(r['longest_ms'] for r in rs)} ms")
    return lines


def cell_sources(cell: Cell, n_cand: int, cfg: DetectDataset, pools: Pools) -> list[tuple[str, int, list]]:
    """(source type, quota, pool of (source, eligible starts)) of a cell, in the order its clips are drawn.

    SPEECH: the speech datasets in equal shares among those with >= min_files_per_cell files
    that can fill the cell (all of them when none can); NONSPEECH: the non-speech types in
    equal shares.
    """
    if cell.label == SPEECH:
        pool_all = pools.get("speech", cell.split, cell.duration_ms)
        by_ds = {d: [p for p in pool_all if p[0].dataset == d] for d in cfg.speech_sources}
        used = speech_used({d: len({q[0].file_id for q in p}) for d, p in by_ds.items()}, cfg.min_files_per_cell)
        what = "speech (" + ", ".join(cfg.speech_sources) + ")"
        return [(what, q, by_ds[d]) for d, q in equal_shares(n_cand, used).items()]
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


@dataclass(frozen=True)
class Built:
    """What `build` wrote: the clip table and what a researcher must be told about the draw."""

    table: pl.DataFrame  # COLUMNS, one row per candidate clip
    draws: list[dict]  # per cell x split: quota, first-round and total candidates, passing the hygiene rule
    source_use: list[dict]  # per source x duration x split: files, too short, no active stretch, eligible, used
    esc50_excluded: dict[str, int]  # excluded ESC-50 category -> files left out


def build(cfg: DetectDataset, roots: dict[str, Path], out: Path, hygiene: DetectHygiene | None = None) -> Built:
    """Write every candidate clip (mix + clean segment) under `out`; return the table and the draw's report.

    With `hygiene`, a cell x split whose candidates cannot pass its quota through the hygiene rule is
    topped up (`fill_cell`). Raises DataError naming the cell, split and source type when a cell cannot
    be filled from at least `min_files_per_cell` distinct source files.
    """
    sources = catalogue(roots, cfg.speech_sources, cfg.nonspeech_types, cfg.noise_colours, cfg.colour_files,
                        cfg.esc50_excluded)
    waves = Waves(roots, cfg.seed)
    pools = Pools(sources, split_groups(sources, cfg), waves, cfg)
    bg_pool = background_pools(cfg, waves, background_files(roots["speech_commands"], cfg.background_files),
                               pools.frame)
    per_split = dict(zip(SPLITS, split_counts(cfg.clips_per_cell, cfg.split_fractions)))
    use = source_use(pools, cfg)  # before any clip is cut: a source left out is reported even if a cell fails
    rows: list[dict] = []
    draws: list[dict] = []
    for cell in design(cfg):
        got, stats = fill_cell(cell, per_split[cell.split], cfg, pools, waves, bg_pool[cell.duration_ms], out,
                               hygiene)
        rows += got
        draws.append(stats)
    excluded = esc50_excluded_files(roots["esc50"], cfg.esc50_excluded) if "esc50" in roots else {}
    table = pl.DataFrame(rows, schema_overrides={"offset_ms": pl.Float64, "noise_offset_ms": pl.Float64})
    return Built(table.select(COLUMNS), draws, use, excluded)


def _cut(cell: Cell, k: int, src: Source, starts: np.ndarray, rng: np.random.Generator, cfg: DetectDataset,
         pools: Pools, waves: Waves, backgrounds: list[tuple[str, np.ndarray]], out: Path) -> dict:
    """Cut, mix and write candidate `k` of a cell from `src`; three draws from `rng`, in this order:
    the source start, the background file, the background start."""
    dur, snr, label, split = cell.duration_ms, cell.snr_db, cell.label, cell.split
    n = SR * dur // 1000
    start = int(starts[rng.integers(0, starts.size)]) * pools.frame
    seg = waves(src.dataset, src.relpath)[start : start + n]
    # the background segment is energy-guided too: never a silent stretch
    bg_rel, bg_starts = backgrounds[int(rng.integers(0, len(backgrounds)))]
    bg_start = int(bg_starts[rng.integers(0, bg_starts.size)]) * pools.frame
    noise = waves("speech_commands", bg_rel)[bg_start : bg_start + n]
    mixed = mix_at_snr(seg, noise, snr)
    mixed = mixed / np.max(np.abs(mixed)) * cfg.peak
    cid = clip_id(label, dur, snr, split, k)
    write_audio(out / "audio" / f"{cid}.wav", mixed, SR)
    write_audio(out / "clean" / f"{cid}.wav", seg, SR)
    return dict(
        clip_id=cid, split=split, label=label, duration_ms=dur, snr_db=float(snr),
        nonspeech_type="" if label == SPEECH else src.kind,
        source_dataset=src.dataset, source_file=src.file_id, group=src.group,
        speaker=src.speaker, offset_ms=1000 * start / SR, noise_file=f"speech_commands/{bg_rel}",
        noise_offset_ms=1000 * bg_start / SR,
        audio=f"audio/{cid}.wav", clean=f"clean/{cid}.wav",
    )


def fill_cell(cell: Cell, quota: int, cfg: DetectDataset, pools: Pools, waves: Waves,
              backgrounds: list[tuple[str, np.ndarray]], out: Path, hygiene: DetectHygiene | None = None
              ) -> tuple[list[dict], dict]:
    """Cut, mix and write the candidate clips of one cell x split whose hygiene quota is `quota`;
    return their table rows and the cell's draw record.

    First round: ceil(quota x oversample) candidates from the cell's own generator in a fixed order,
    which the committed clips depend on: per source type (in `cell_sources` order) one permutation
    of its pool, then per clip the source start, the background file and the background start.
    With `hygiene`, every candidate's clean segment goes through the hygiene rule; while a source
    type has fewer passing candidates than its equal share of `quota` (or the cell fewer than
    `quota`), that type draws one more candidate at a time from its own top-up generator (so the
    first round never changes), until ceil(quota x max_oversample) candidates in all.
    """
    rng = cell.rng(cfg.seed)
    strata = cell_sources(cell, math.ceil(quota * cfg.oversample), cfg, pools)
    rows: list[dict] = []
    kinds: list[int] = []  # stratum of each row
    for s, (what, n_first, pool) in enumerate(strata):
        files = {p[0].file_id for p in pool}
        if n_first and len(files) < cfg.min_files_per_cell:
            raise DataError(
                f"detect.dataset: cell {cell.label} {cell.duration_ms} ms {cell.snr_db:+g} dB, split {cell.split}: "
                f"{len(files)} {what} source file(s) with an active {cell.duration_ms} ms segment, "
                f"need >= {cfg.min_files_per_cell} (min_files_per_cell); add source files or "
                f"lower detect.dataset.durations_ms / min_active"
            )
        order = rng.permutation(len(pool))
        for i in range(n_first):
            src, starts = pool[order[i % len(pool)]]
            rows.append(_cut(cell, len(rows), src, starts, rng, cfg, pools, waves, backgrounds, out))
            kinds.append(s)
    first = len(rows)
    stats = {"label": cell.label, "duration_ms": cell.duration_ms, "snr_db": float(cell.snr_db), "split": cell.split,
             "quota": quota, "first_round": first}
    if hygiene is None:
        return rows, stats | {"candidates": first, "pass_rule": "", "short": ""}
    passing = [0] * len(strata)
    for r, s in zip(rows, kinds):
        passing[s] += keeps(cell.label, clip_activity(out, r["clean"], cell.duration_ms, hygiene), hygiene)
    drawn = [kinds.count(s) for s in range(len(strata))]
    share = math.ceil(quota / len(strata))
    caps = list(equal_shares(math.ceil(quota * cfg.max_oversample), [str(s) for s in range(len(strata))]).values())
    can = [len({p[0].file_id for p in pool}) >= cfg.min_files_per_cell for _, _, pool in strata]
    topup = [cell.rng(cfg.seed, stratum=s) for s in range(len(strata))]
    orders = [topup[s].permutation(len(pool)) for s, (_, _, pool) in enumerate(strata)]
    extra = [0] * len(strata)  # top-up candidates drawn per type
    while True:
        todo = [s for s in range(len(strata)) if can[s] and drawn[s] < caps[s] and passing[s] < share]
        if not todo and sum(passing) < quota:  # a type at its cap: the others make up the cell
            todo = [s for s in range(len(strata)) if can[s] and drawn[s] < caps[s]]
        if not todo:
            break
        for s in todo:
            pool = strata[s][2]
            src, starts = pool[orders[s][extra[s] % len(pool)]]
            r = _cut(cell, len(rows), src, starts, topup[s], cfg, pools, waves, backgrounds, out)
            rows.append(r)
            drawn[s] += 1
            extra[s] += 1
            passing[s] += keeps(cell.label, clip_activity(out, r["clean"], cell.duration_ms, hygiene), hygiene)
    short = "" if sum(passing) >= quota else f"{sum(passing)} of {quota} pass at the cap"
    return rows, stats | {"candidates": len(rows), "pass_rule": sum(passing), "short": short}


def candidate_counts(table: pl.DataFrame) -> pl.DataFrame:
    """Candidates per cell (label x duration x SNR), split and non-speech type."""
    return (table.group_by("label", "duration_ms", "snr_db", "split", "nonspeech_type", "source_dataset")
            .len("candidates").sort("label", "duration_ms", "snr_db", "split", "nonspeech_type", "source_dataset"))
