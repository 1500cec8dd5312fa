"""phase0 up to the frame index with the real dvc on a temp copy: encode once, a new seed re-splits without re-encoding."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from audioprobe.encoders.store import EncoderStore


@pytest.mark.e2e
def test_dvc_repro_frames_on_the_embedded_corpus(temp_repo):
    temp_repo.set_params({
        "data": {"librispeech": {"embedded": {"speakers": 6, "utterances": 2}}},
        "phase0": {"latents": {"batch_size": 4, "device": "cpu"}},
    })
    temp_repo.commit("tiny")
    temp_repo.run("dvc", "repro", "phase0_frames")
    root = temp_repo.root
    store = EncoderStore(root / "data/phase0/latents")
    index = store.index
    assert index.height == 12 and index["speaker_id"].n_unique() == 6
    off = store.offsets
    assert off[-1] == store.x.shape[0] == store.energy.shape[0] and store.x.shape[1] == 80
    assert np.array_equal(np.diff(off), index["n_frames"].to_numpy())
    splits = root / "data/phase0/splits"
    eval_spk = (splits / "eval_speakers.txt").read_text().split()
    assert len(eval_spk) == 1 and len((splits / "train_speakers.txt").read_text().split()) == 5
    frames = pl.read_parquet(root / "data/phase0/phase0_frames.parquet")
    assert frames["t"].min() == 11 and set(frames["split"].unique()) == {"train", "heldout", "eval"}
    latents_m = json.loads((root / "plots/phase0/latents/latents.json").read_text())
    assert latents_m["nan_count"] == 0 and latents_m["encoder"] == "mel" and latents_m["n_utterances"] == 12
    assert latents_m["data"]["source"] == "embedded" and len(latents_m["data"]["sha256"]) == 64
    assert latents_m["weights"]["weights"] == "none" and latents_m["random_weights"] is False
    frames_m = json.loads((root / "plots/phase0/frames/frames.json").read_text())
    assert frames_m["n_rows"] == frames.height and frames_m["speakers"]["eval"] == 1
    # detail tables are plain outputs now: the lane's only metrics file is metrics/phase0.json
    assert not (root / "metrics/phase0_latents.json").exists() and not (root / "metrics/phase0_frames.json").exists()
    # A new seed re-splits the speakers but never re-encodes the audio.
    temp_repo.commit("ran")
    temp_repo.set_params({"seed": 668})
    out = temp_repo.run("dvc", "repro", "phase0_frames").stdout
    assert "Running stage 'phase0_latents'" not in out and "Running stage 'phase0_speaker_split'" in out
