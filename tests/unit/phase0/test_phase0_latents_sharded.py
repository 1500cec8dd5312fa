"""Sharded latents: N ranks (torchrun, gloo on CPU) write what one process writes; resume; crash.

The torchrun tests run the real stage module through audioprobe.parallel.launch on a tiny
LibriSpeech-layout corpus (40 utterances of 0.6 s, 3 blocks of 16 at batch size 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr

from audioprobe.audio.io import write_audio
from audioprobe.encoders.mel import MelEncoder
from audioprobe.encoders.store import FRAMES, shard_blocks, write_store
from audioprobe.phase0.latents import as_store_items, select_utterances

REPO = Path(__file__).resolve().parents[3]
SR = 16000
ARRAYS = ("x", "energy", "timestamps", "offsets", "n_frames")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """data/raw/librispeech-like folder: source.json + LibriSpeech/train-clean-100, 40 utterances."""
    raw = tmp_path_factory.mktemp("raw") / "librispeech"
    rng = np.random.default_rng(0)
    for u in range(40):
        spk, chap = 100 + u % 5, 7
        n = int(SR * 0.6) + int(rng.integers(0, 4000))
        wave = (0.1 * rng.standard_normal(n)).astype(np.float32)
        write_audio(raw / "LibriSpeech" / "train-clean-100" / str(spk) / str(chap) / f"{spk}-{chap}-{u:04d}.flac",
                    wave, SR)
    (raw / "source.json").write_text(json.dumps({"root": "LibriSpeech", "source": "test", "sha256": "0" * 64}))
    return raw


def _params(tmp: Path, nproc: int = 1) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    p = tmp / "params.yaml"
    p.write_text("phase0:\n  latents: {subset: train-clean-100, min_seconds: 0.5, batch_size: 1, device: cpu, "
                 f"load_workers: 1, nproc: {nproc}}}\n  encoder: {{name: mel}}\n")
    return p


def _run_stage(raw: Path, out: Path, nproc: int, fault: str | None = None) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "audioprobe.parallel.launch", "--nproc", str(nproc), "-m", "stages.phase0_latents"]
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{REPO}",
           "HF_HUB_OFFLINE": "1"}
    env.pop("AUDIOPROBE_TEST_FAULT", None)
    if fault:
        env["AUDIOPROBE_TEST_FAULT"] = fault
    return subprocess.run(
        [*launcher, "--raw", str(raw), "--out", str(out / "data"), "--stats", str(out / "stats.json"),
         "--params", str(_params(out, nproc))],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )


def _assert_same_store(a: Path, b: Path) -> None:
    ga, gb = (zarr.open_group(str(p / FRAMES), mode="r") for p in (a, b))
    for name in ARRAYS:
        np.testing.assert_array_equal(ga[name][:], gb[name][:], err_msg=name)
        assert ga[name].chunks == gb[name].chunks and ga[name].dtype == gb[name].dtype
    assert dict(ga.attrs) == dict(gb.attrs)
    for name in ("index.parquet", "encoder.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_shard_blocks_are_contiguous_whole_runs_covering_every_block():
    for n, world in [(3, 2), (1, 2), (7, 3), (16, 4), (0, 2)]:
        runs = [list(shard_blocks(n, r, world)) for r in range(world)]
        assert sum(runs, []) == list(range(n))
        assert max(map(len, runs)) - min(map(len, runs)) <= 1


@dataclass
class FakeDist:
    """The parts of audioprobe.parallel.dist.Dist write_store uses, for ranks run one after another."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, values):
        return np.asarray(values, dtype=np.float64) * self.world  # every rank resumed alike (here: 0)


@pytest.mark.parametrize("world", [2, 3, 5])
def test_merged_shards_equal_one_process(raw, tmp_path, world):
    root = raw / "LibriSpeech"
    items, columns = as_store_items(select_utterances(root, "train-clean-100", 0.5)[0])
    kw = dict(batch_size=1, load_workers=1, columns=columns, attrs={"data": {"source": "test"}}, progress=False)
    one = write_store(root, items, MelEncoder(), tmp_path / "one", **kw)
    for rank in reversed(range(world)):  # rank 0 last: it merges what every rank wrote
        got = write_store(root, items, MelEncoder(), tmp_path / "many", d=FakeDist(rank, world), **kw)
        assert (got is None) == (rank > 0)
    _assert_same_store(tmp_path / "one", tmp_path / "many")
    assert got["x_mean"] == one["x_mean"] and got["x_std"] == one["x_std"]  # same fold over the same blocks
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many", "one"]  # no partial store left


@pytest.mark.slow
def test_torchrun_two_ranks_crash_then_resume_equal_one_process(raw, tmp_path):
    one = _run_stage(raw, tmp_path / "one", 1)
    assert one.returncode == 0, one.stderr

    # Rank 1 dies after its first block: one line naming it, nothing in place, shards kept.
    crash = _run_stage(raw, tmp_path / "two", 2, fault="store.block@1")
    assert crash.returncode == 1
    last = crash.stderr.strip().splitlines()[-1]
    assert last.startswith("error: stages.phase0_latents: rank 1 of 2 failed") and "injected test fault" in last, last
    data = tmp_path / "two" / "data"
    assert not data.exists() and not (tmp_path / "two" / "stats.json").exists()
    shard1 = zarr.open_group(str(tmp_path / "two" / ".data.shard-1-of-2.partial" / FRAMES), mode="r")
    assert shard1.attrs["partial"]["blocks"] == 1

    # The rerun resumes rank 1 after its recorded block and ends as one process would.
    again = _run_stage(raw, tmp_path / "two", 2)
    assert again.returncode == 0, again.stderr
    resumed = [ln for ln in again.stdout.splitlines() if "resumed after" in ln]
    assert resumed and int(resumed[0].split("resumed after ")[1].split()[0]) >= 16
    _assert_same_store(tmp_path / "one" / "data", data)
    assert (tmp_path / "one" / "stats.json").read_bytes() == (tmp_path / "two" / "stats.json").read_bytes()
    assert sorted(p.name for p in data.iterdir()) == ["encoder.json", "frames.zarr", "index.parquet"]
    assert not list((tmp_path / "two").glob(".data.*partial"))
