"""Per-dataset summary: clips, speakers, classes, durations, sample rates, source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audioprobe.data import esc50, librispeech, musan, reasonaqa, speech_commands
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.runtime.headline import data_entry, headline


def _groups(name: str, root: Path) -> tuple[dict[str, int], list[Path]]:
    """Return (count fields, audio files) for one dataset."""
    if name == "speech_commands":
        clips = speech_commands.list_clips(root)
        counts = {"speakers": len({c.speaker for c in clips}), "classes": len({c.word for c in clips})}
        for split in ("train", "validation", "test"):
            counts[f"clips_{split}"] = sum(c.split == split for c in clips)
        return counts, [root / c.relpath for c in clips]
    if name == "librispeech":
        utts = librispeech.list_utterances(root)
        return ({"speakers": len({u.speaker for u in utts}), "chapters": len({(u.speaker, u.chapter) for u in utts}),
                 "subsets": len({u.subset for u in utts})}, [root / u.relpath for u in utts])
    if name == "esc50":
        clips = esc50.list_clips(root)
        return ({"classes": len({c.target for c in clips}), "folds": len({c.fold for c in clips})},
                [root / c.relpath for c in clips])
    if name == "musan":
        items = musan.list_items(root)
        counts = {f"files_{c}": sum(i.category == c for i in items) for c in musan.CATEGORIES}
        return counts, [root / i.relpath for i in items]
    if name == "reasonaqa":
        files = reasonaqa.split_files(root)
        rows = {s: reasonaqa.load_split(root, s) for s in files}
        counts = {f"rows_{s}": len(r) for s, r in rows.items()}
        counts["tasknames"] = len({r["taskname"] for rs in rows.values() for r in rs})
        return counts, reasonaqa.audio_files(root)
    raise ValueError(name)


def summarise(name: str, raw_dir: Path, params_file: Path = Path("params.yaml")) -> tuple[dict, np.ndarray]:
    """Return (flat metrics for `name`, per-file durations in seconds)."""
    root = dataset_root(raw_dir, params_file)
    src = read_source(raw_dir)
    counts, files = _groups(name, root)
    infos = [sf.info(str(f)) for f in files]
    dur = np.array([i.frames / i.samplerate for i in infos], dtype=np.float64)
    rates = sorted({i.samplerate for i in infos})
    out = {
        "clips": len(files), **counts,
        "seconds_total": round(float(dur.sum()), 3), "seconds_mean": round(float(dur.mean()), 4),
        "seconds_min": round(float(dur.min()), 4), "seconds_max": round(float(dur.max()), 4),
        "sample_rates": ",".join(str(r) for r in rates),
        "source": src["source"], "sha256": src["sha256"],
    }
    return {f"{name}.{k}": v for k, v in out.items()}, dur


def headline_values(detail: dict[str, dict]) -> dict:
    """Return metrics/data.json: per dataset its clip count, hours and `<source>@<sha12>`.

    Everything else `summarise` measured (speakers, classes, splits, durations, rates, full
    hashes) is in plots/data/report/summary.json.
    """
    values: dict = {}
    for name, d in detail.items():
        values[f"{name}.clips"] = d["clips"]
        values[f"{name}.hours"] = round(d["seconds_total"] / 3600, 3)
        values[f"{name}.source"] = data_entry(d)
    out = headline("data", values, data={})
    out["data.synthetic"] = any(d["source"] == "embedded" for d in detail.values())
    return out
