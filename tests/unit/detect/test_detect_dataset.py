"""detect dataset: no split leakage, determinism, cell counts, and one-line errors on bad input."""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from audioprobe.detect.clips import build, candidate_counts
from audioprobe.detect.hygiene import read_clip
from audioprobe.detect.params import DetectDataset
from audioprobe.detect.splits import assign_groups, split_counts
from audioprobe.runtime.errors import DataError, ParamsError
from audioprobe.runtime.params import validate_group

SR = 16000
BG = ["doing_the_dishes.wav", "exercise_bike.wav", "pink_noise.wav", "running_tap.wav", "white_noise.wav"]


def _voiced(rng, seconds, f0):
    t = np.arange(int(seconds * SR)) / SR
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8)) * env
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _noise(rng, seconds):
    return (0.2 * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def make_roots(base: Path) -> dict[str, Path]:
    """Tiny official layouts of the four datasets (numpy-made audio)."""
    rng = np.random.default_rng(0)
    ls = base / "LibriSpeech"
    for s in range(8):
        d = ls / "train-clean-100" / str(100 + s) / "7"
        d.mkdir(parents=True)
        for u in range(2):
            sf.write(d / f"{100 + s}-7-{u:04d}.flac", _voiced(rng, 3.0, 100 + 10 * s), SR)
    sc = base / "speech_commands"
    for w in ("yes", "no"):
        (sc / w).mkdir(parents=True)
        for s in range(8):
            sf.write(sc / w / f"{s:08x}_nohash_0.wav", _voiced(rng, 1.0, 150 + 5 * s), SR)
    (sc / "validation_list.txt").write_text("")
    (sc / "testing_list.txt").write_text("")
    (sc / "_background_noise_").mkdir()
    for n in BG:
        sf.write(sc / "_background_noise_" / n, _noise(rng, 5.0), SR)
    esc = base / "ESC-50"
    (esc / "audio").mkdir(parents=True)
    (esc / "meta").mkdir()
    rows = []
    for target, cat in ((0, "dog"), (10, "rain")):
        for i in range(10):
            name = f"{1 + i % 5}-{1000 + 17 * i + target}-A-{target}.wav"
            sf.write(esc / "audio" / name, _noise(rng, 5.0) if target else _voiced(rng, 5.0, 500), SR)
            rows.append([name, 1 + i % 5, target, cat, False, 1000 + 17 * i + target, "A"])
    with open(esc / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    mu = base / "musan"
    for cat, src in (("music", "fma"), ("noise", "free-sound")):
        (mu / cat / src).mkdir(parents=True)
        for i in range(10):
            sf.write(mu / cat / src / f"{cat}-{i:04d}.wav", _voiced(rng, 4.0, 220 + 30 * i) if cat == "music"
                     else _noise(rng, 4.0), SR)
    return {"librispeech": ls, "speech_commands": sc, "esc50": esc, "musan": mu}


CFG = DetectDataset(durations_ms=[200, 1000], snrs_db=[0.0, 10.0], clips_per_cell=10, oversample=1.5,
                    colour_files=2)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    return make_roots(tmp_path_factory.mktemp("roots"))


@pytest.fixture(scope="module")
def built(roots, tmp_path_factory) -> tuple[Path, pl.DataFrame]:
    out = tmp_path_factory.mktemp("clips")
    return out, build(CFG, roots, out)


def test_no_source_file_or_speaker_in_two_splits(built):
    _, t = built
    for col in ("source_file", "group"):
        per = t.group_by(col).agg(pl.col("split").n_unique().alias("k"))
        assert per["k"].max() == 1, col
    spk = t.filter(pl.col("speaker") != "").group_by("speaker").agg(pl.col("split").n_unique().alias("k"))
    assert spk.height >= 6 and spk["k"].max() == 1
    assert set(t["split"]) == {"train", "dev", "test"}


def test_every_cell_gets_its_candidates_in_equal_type_shares(built):
    _, t = built
    per_split = dict(zip(("train", "dev", "test"), split_counts(CFG.clips_per_cell, CFG.split_fractions)))
    cells = t.group_by("label", "duration_ms", "snr_db", "split").len()
    assert cells.height == 2 * 2 * 2 * 3
    for r in cells.iter_rows(named=True):
        assert r["len"] == math.ceil(per_split[r["split"]] * CFG.oversample)
    ns = t.filter((pl.col("label") == "NONSPEECH") & (pl.col("split") == "train"))
    shares = ns.group_by("duration_ms", "snr_db", "nonspeech_type").len()["len"]
    assert shares.max() - shares.min() <= 1
    assert candidate_counts(t)["candidates"].sum() == t.height


def test_clips_have_their_cell_duration_and_are_peak_normalised(built):
    out, t = built
    for r in t.sample(20, seed=0).iter_rows(named=True):
        wave = read_clip(out, r["audio"], r["duration_ms"])
        assert np.abs(wave).max() == pytest.approx(CFG.peak, abs=1e-3)
        clean = read_clip(out, r["clean"], r["duration_ms"])
        assert np.sqrt(np.mean(clean**2)) > 1e-3  # an active segment, never silence


def test_build_is_deterministic(roots, built, tmp_path):
    out, t = built
    t2 = build(CFG, roots, tmp_path)
    assert t.equals(t2)
    for rel in t["audio"].to_list()[:: max(1, t.height // 25)]:
        assert hashlib.sha256((out / rel).read_bytes()).digest() == hashlib.sha256((tmp_path / rel).read_bytes()).digest()


def test_cells_are_the_flat_design_and_each_fills_alone_the_same(roots, built, tmp_path):
    """design() lists duration x SNR x class x split in the table's order; a cell's draws come from its
    own generator, so one cell filled alone gives the same clips as inside the whole build."""
    from audioprobe.detect.clips import (
        Pools, Waves, background_files, background_pools, catalogue, design, fill_cell, split_groups,
    )

    out, t = built
    cells = design(CFG)
    assert len(cells) == len(CFG.durations_ms) * len(CFG.snrs_db) * 2 * 3
    order = t.select("duration_ms", "snr_db", "label", "split").unique(maintain_order=True).rows()
    assert order == [(c.duration_ms, c.snr_db, c.label, c.split) for c in cells]
    cell = cells[-1]  # the last cell, filled first and alone
    sources = catalogue(roots, CFG.speech_sources, CFG.nonspeech_types, CFG.noise_colours, CFG.colour_files)
    waves = Waves(roots, CFG.seed)
    pools = Pools(sources, split_groups(sources, CFG), waves, CFG)
    bg = background_pools(CFG, waves, background_files(roots["speech_commands"], CFG.background_files), pools.frame)
    want = t.filter((pl.col("duration_ms") == cell.duration_ms) & (pl.col("snr_db") == cell.snr_db)
                    & (pl.col("label") == cell.label) & (pl.col("split") == cell.split))
    got = fill_cell(cell, want.height, CFG, pools, waves, bg[cell.duration_ms], tmp_path)
    assert pl.DataFrame(got, schema_overrides=dict(want.schema)).select(want.columns).equals(want)
    for rel in want["audio"].to_list():
        assert (out / rel).read_bytes() == (tmp_path / rel).read_bytes()


def test_group_split_is_a_partition():
    g = [f"g{i}" for i in range(20)]
    a = assign_groups(g, [0.6, 0.2, 0.2], 0)
    assert sorted(a) == sorted(g) and [list(a.values()).count(s) for s in ("train", "dev", "test")] == [12, 4, 4]
    assert assign_groups(g, [0.6, 0.2, 0.2], 1) != a


def test_too_few_source_files_for_a_cell_is_one_line(roots, tmp_path):
    cfg = CFG.model_copy(update={"min_files_per_cell": 50})
    with pytest.raises(DataError) as e:
        build(cfg, roots, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "detect.dataset" in msg and "min_files_per_cell" in msg and "split" in msg


def test_sources_shorter_than_the_duration_cannot_fill_a_cell(roots, tmp_path):
    cfg = CFG.model_copy(update={"durations_ms": [6000]})  # every source is <= 5 s
    with pytest.raises(DataError, match="6000 ms"):
        build(cfg, roots, tmp_path)


@pytest.mark.parametrize("override, key", [
    ({"snrs_db": [0, "loud", 10]}, "detect.dataset.snrs_db.1"),
    ({"durations_ms": [0, 200]}, "detect.dataset.durations_ms.0"),
    ({"split_fractions": [0.5, 0.2, 0.2]}, "split_fractions"),
])
def test_bad_params_are_one_line_naming_the_key(override, key):
    with pytest.raises(ParamsError) as e:
        validate_group({"detect": {"dataset": override}}, "detect.dataset")
    assert key in str(e.value) and "\n" not in str(e.value)


def test_a_clip_shorter_than_its_duration_names_the_file(tmp_path):
    sf.write(tmp_path / "c.wav", np.zeros(3000, np.float32) + 0.1, SR)
    with pytest.raises(DataError) as e:
        read_clip(tmp_path, "c.wav", 200)
    assert "c.wav" in str(e.value) and "3000 samples, expected 3200" in str(e.value)
