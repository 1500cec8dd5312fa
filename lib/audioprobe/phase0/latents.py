"""phase0's latents: LibriSpeech utterances through one encoder, in the encoder store.

`phase0_latents` (params phase0.encoder) and `phase0_tier1_latents@<enc>` (phase0.tier1.<enc>)
both run `encode_stage`: the utterances of phase0.latents (subset, minimum length) in id order,
encoded into one store folder (audioprobe.encoders.store: frames.zarr with x, per-frame energy
and timestamps, offsets; index.parquet; encoder.json). The store's index carries phase0's
columns (utterance_id, speaker_id, chapter_id, subset, duration_sec) beside its own; phase0
reads it back with `open_latents`.
"""

from __future__ import annotations

import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.librispeech import Utterance, list_utterances
from audioprobe.encoders import build_encoder
from audioprobe.encoders.store import EncoderStore, StoreItem, write_store
from audioprobe.parallel import dist
from audioprobe.runtime.atomic import write_json
from audioprobe.runtime.errors import DataError

SHARD_WAIT_S = 7 * 24 * 3600.0  # how long a rank may wait for slower shards


@dataclass(frozen=True)
class Item:
    """One utterance to encode: its LibriSpeech record and its duration (from the header)."""

    utt: Utterance
    duration_sec: float


def select_utterances(
    root: Path, subset: str | list[str], min_seconds: float, workers: int = 2
) -> tuple[list[Item], int]:
    """Return (utterances of `subset` lasting >= min_seconds in id order, number dropped as short)."""
    utts = list_utterances(root, subset)

    def duration(u: Utterance) -> float:
        try:
            info = sf.info(str(root / u.relpath))
        except Exception as exc:
            raise DataError(f"{root / u.relpath}: not a readable audio file ({exc})") from None
        return info.frames / info.samplerate

    with ThreadPoolExecutor(max(1, workers)) as pool:
        durations = list(pool.map(duration, utts))
    items = [Item(u, d) for u, d in zip(utts, durations) if d >= min_seconds]
    if not items:
        raise DataError(
            f"{root}: no utterance of {subset!r} lasts >= {min_seconds} s "
            f"({len(utts)} found); lower phase0.latents.min_seconds"
        )
    return items, len(utts) - len(items)


def as_store_items(items: list[Item]) -> tuple[list[StoreItem], dict[str, list]]:
    """The utterances as encoder-store items, and phase0's index columns beside the store's own."""
    columns = {"utterance_id": [it.utt.utt_id for it in items], "speaker_id": [it.utt.speaker for it in items],
               "chapter_id": [it.utt.chapter for it in items], "subset": [it.utt.subset for it in items],
               "duration_sec": [it.duration_sec for it in items]}
    return [StoreItem(it.utt.utt_id, it.utt.relpath, it.duration_sec) for it in items], columns


def latents_stats(encoder, items: list[Item], n_short: int, summary: dict, data: dict,
                  subset: str | list[str], min_seconds: float) -> dict:
    """Return the committed statistics of a latents store (plots/phase0/latents/, tier1_latents/<enc>/)."""
    return {
        "encoder": encoder.name,
        "dim": encoder.dim,
        "hop": encoder.hop,
        "frame_rate": encoder.frame_rate,
        "sample_rate": encoder.sample_rate,
        "n_utterances": len(items),
        "n_utterances_too_short": n_short,
        "n_speakers": len({it.utt.speaker for it in items}),
        "n_frames": summary["n_frames"],
        "audio_hours": round(sum(it.duration_sec for it in items) / 3600.0, 4),
        "x_mean": summary["x_mean"],
        "x_std": summary["x_std"],
        "nan_count": 0,  # the store refuses NaN frames
        "random_weights": encoder.is_random,
        "weights": {k: str(v) for k, v in encoder.provenance.items()},
        "data": {**data, "subset": subset if isinstance(subset, str) else ",".join(subset),
                 "min_seconds": min_seconds},
    }


SHARD_WAIT_S = 7 * 24 * 3600.0  # how long a rank may wait for slower shards


def encode_stage(stage: str, cfg, enc_cfg, param: str, raw: Path, out_dir: Path, stats: Path,
                 resume: bool = True, params_file: Path = Path("params.yaml")) -> None:
    """Run one latents stage: encode phase0's utterances with `enc_cfg` into the store `out_dir`, write `stats`.

    Shared by `phase0_latents` (phase0.encoder) and `phase0_tier1_latents@<enc>` (phase0.tier1.<enc>):
    `cfg` is phase0.latents (utterances, batching, device), `param` the params key that
    errors about the encoder name. One process, or one rank of a torchrun launch
    (the store shards whole blocks and rank 0 merges).
    """
    # A dead rank fails its peers at once; the long timeout only lets ranks wait for slower shards.
    with dist.session(cfg.device, "phase0.latents.device", timeout_s=SHARD_WAIT_S) as d:
        # Weights first: a missing checkpoint should stop the stage before any audio is scanned.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a random init is announced once, below
            encoder = build_encoder(enc_cfg, d.device, param=param)
        root = dataset_root(raw, params_file)
        source = read_source(raw)
        if encoder.is_random and d.is_main:
            print(f"WARNING: encoder {encoder.provenance['name']} has RANDOM weights ({param}.weights: "
                  "random-init); every metric and table records weights=random-init", file=sys.stderr)
        items, n_short = select_utterances(root, cfg.subset, cfg.min_seconds, cfg.load_workers)
        procs = f", {d.world} processes ({d.backend})" if d.distributed else ""
        dist.main_print(d, f"{stage}: {len(items)} utterances (dropped {n_short} < {cfg.min_seconds} s) -> "
                           f"{encoder.name} {encoder.dim}-d at {encoder.frame_rate:g} Hz on {d.device}{procs}")
        data_prov = {"source": str(source["source"]), "sha256": str(source["sha256"])}
        store_items, columns = as_store_items(items)
        summary = write_store(root, store_items, encoder, out_dir, batch_size=cfg.batch_size,
                              load_workers=cfg.load_workers, columns=columns, attrs={"data": data_prov},
                              resume=resume, d=d)
        if summary is None:  # ranks > 0: rank 0 merged and writes the rest
            return
        if summary["resumed_items"]:
            print(f"{stage}: resumed after {summary['resumed_items']} utterances already encoded")
        write_json(stats, latents_stats(encoder, items, n_short, summary, data_prov, cfg.subset, cfg.min_seconds))
        print(f"{stage}: {summary['n_frames']} frames, x mean {summary['x_mean']:.4g} "
              f"std {summary['x_std']:.4g}, 0 NaN -> {out_dir}")


def open_latents(folder: Path, stage: str = "phase0_latents") -> EncoderStore:
    """The latents store of a phase0 latents stage, or one line saying which stage to run."""
    if not (Path(folder) / "index.parquet").is_file():
        raise DataError(f"{folder}: no latents store; run `dvc repro {stage}`")
    return EncoderStore(folder)
