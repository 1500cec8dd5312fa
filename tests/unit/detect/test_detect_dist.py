"""detect_finetune under torchrun: 1 vs 2 processes (gloo, CPU) train the same adapter; a crashing
rank fails in one line and leaves the previous outputs untouched; a batch that does not split is refused.

What makes 1 and 2 processes comparable: both draw the same epoch order and SpecAugment over
each whole batch, rank r trains rows r, r + 2, ... of it padded to the batch's full width, and
the LoRA dropout (0.2 here, so a wrong mask would show) draws the whole batch's mask and keeps
the same rows (dist.ShardedDropout), so every row sees the mask one process gives it. The
17 train clips at batch 4 end each epoch with a 1-clip batch that leaves rank 1 no rows.

Tolerance: what remains is float reduction order (each rank runs the model on half the rows,
with other matmul blocking, and the gradient is the mean of two half-batch token sums scaled
instead of one mean), ~1e-7 relative per step, which Adam (lr 3e-3 here, the embedded recipe)
amplifies a little over the 6 steps. Measured on this setup: 2.4e-7 in the dev losses, 1.1e-7
in the train losses, 6.5e-8 in the adapter weights (lora_B reaches 1e-2). With plain
per-rank dropout instead of the sharded masks the same runs differ by 2.6e-2 in the losses
and 1.9e-2 in the weights. The test allows 1e-5 in every loss and 1e-4 in every weight
(headroom for other BLAS builds); dev balanced accuracy, best step and history steps are
exact counts and must be equal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from conftest import REPO, deep_update, stage_env

SR = 16000
TINY = {"detect": {"llm": {
    "lora": {"dropout": 0.2},
    # 17 train clips: batches 4 4 4 4 1 (grad_accum 2: 3 optimiser steps per epoch), 8 dev clips
    "finetune": {"epochs": 2, "batch_size": 4, "grad_accum": 2, "warmup_steps": 1, "eval_every": 2,
                 "specaug_p": 1.0, "threads": 1},
}}}
N_TRAIN, N_DEV = 17, 8


def _write_params(path: Path, over: dict | None = None) -> Path:
    params = deep_update(yaml.safe_load((REPO / "params.yaml").read_text()), deep_update(TINY, over or {}))
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder with the embedded base, toy clips (tone = SPEECH, noise = NONSPEECH), their table and params."""
    from audioprobe.audio.io import write_audio
    from audioprobe.detect.llm.base import write_base
    from audioprobe.detect.llm.params import LlmModel

    work = tmp_path_factory.mktemp("detect_dist")
    (work / "base").mkdir()
    write_base(LlmModel(), work / "base")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_TRAIN + N_DEV):
        n = int(SR * rng.choice([0.2, 0.3]))
        t = np.arange(n) / SR
        speech = i % 2 == 0
        wave = 0.4 * np.sin(2 * np.pi * 300 * t) if speech else 0.05 * rng.standard_normal(n)
        write_audio(work / "clips" / f"c{i:02d}.wav", wave.astype(np.float32), SR)
        rows.append({"clip_id": f"c{i:02d}", "split": "train" if i < N_TRAIN else "dev",
                     "label": "SPEECH" if speech else "NONSPEECH", "duration_ms": 1000 * n // SR, "snr_db": 10.0,
                     "audio": f"c{i:02d}.wav"})
    (work / "hygiene").mkdir()
    pl.DataFrame(rows).write_parquet(work / "hygiene" / "clips.parquet")
    _write_params(work / "params.yaml")
    return work


def _finetune(work: Path, nproc: int, name: str, params: str = "params.yaml",
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run detect_finetune through audioprobe.parallel.launch; outputs under work/name."""
    cmd = [sys.executable, "-m", "audioprobe.parallel.launch", "--nproc", str(nproc), "-m", "stages.detect_finetune",
           "--base", "base", "--clips", "clips", "--kept", "hygiene/clips.parquet", "--out", f"{name}/adapter",
           "--live", f"{name}/live", "--summary", f"{name}/finetune.json", "--params", params]
    return subprocess.run(cmd, cwd=work, env=stage_env(env), capture_output=True, text=True, timeout=300)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def one(work) -> Path:
    """The one-process run (outputs under work/one)."""
    _ok(_finetune(work, 1, "one"))
    return work / "one"


@pytest.mark.slow
def test_one_and_two_processes_train_the_same_adapter(work, one):
    from safetensors.torch import load_file

    proc = _ok(_finetune(work, 2, "two"))
    assert "2 processes (gloo)" in proc.stdout
    two = work / "two"
    a, b = (json.loads((r / "finetune.json").read_text()) for r in (one, two))
    assert a["train_clips"] == b["train_clips"] == N_TRAIN and a["dev_clips"] == b["dev_clips"] == N_DEV
    assert [r["step"] for r in a["history"]] == [r["step"] for r in b["history"]] == [2, 4, 6]
    assert a["best_step"] == b["best_step"]
    for ra, rb in zip(a["history"], b["history"]):
        assert ra["dev_balanced_accuracy"] == rb["dev_balanced_accuracy"]
        for key in ("train_loss", "dev_loss"):
            assert abs(ra[key] - rb[key]) < 1e-5, (key, ra, rb)
    assert a["history"][0]["train_loss"] != a["history"][-1]["train_loss"]  # it trained
    wa, wb = (load_file(str(r / "adapter" / "adapter_model.safetensors")) for r in (one, two))
    assert set(wa) == set(wb) and any("lora_B" in k for k in wa)
    for k in wa:
        np.testing.assert_allclose(wa[k].numpy(), wb[k].numpy(), rtol=0, atol=1e-4, err_msg=k)
    moved = max(float(w.abs().max()) for k, w in wa.items() if "lora_B" in k)  # lora_B starts at 0
    assert moved > 1e-3, "the adapter must have moved, or the weight tolerance says nothing"
    assert (one / "adapter/adapter_config.json").read_bytes() == (two / "adapter/adapter_config.json").read_bytes()
    la, lb = _files(one / "live"), _files(two / "live")
    assert set(la) == set(lb) and "plots/metrics/dev_loss.tsv" in la
    for name in la:  # dev balanced accuracy is an exact count: its curve is byte-identical
        if "balanced_accuracy" in name:
            assert la[name] == lb[name]
    assert not list(work.rglob(".*.tmp"))


def test_a_crashing_rank_fails_in_one_line_and_leaves_the_previous_outputs(work, one):
    crash = work / "crash"
    shutil.copytree(one, crash)
    before = _files(crash)
    proc = _finetune(work, 2, "crash", env={"AUDIOPROBE_TEST_FAULT": "detect.finetune.step2@1"})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: stages.detect_finetune: rank 1 of 2 failed (exit code 1): RuntimeError: injected"), \
        proc.stderr[-3000:]
    assert _files(crash) == before  # adapter, curves and summary untouched
    assert sorted(p.name for p in crash.iterdir()) == ["adapter", "finetune.json", "live"]  # no temp folders


def test_finetune_curves_carry_the_banner_of_their_data_and_weights(one):
    """The random-init stand-in on toy clips that are not the embedded corpus (no provenance record): the
    curves' banner column (the chart draws it) says random-init, and not synthetic."""
    import polars as pl

    from audioprobe.runtime.headline import BANNER_FIELD, RANDOM_INIT_BANNER

    curves = sorted((one / "live").rglob("*.tsv"))
    assert len(curves) >= 3
    for f in curves:
        t = pl.read_csv(f, separator="\t")
        assert t.columns[-1] == BANNER_FIELD and set(t[BANNER_FIELD]) == {RANDOM_INIT_BANNER}, f


def test_a_batch_that_does_not_split_is_one_line_naming_the_key(work):
    _write_params(work / "params-bad.yaml", {"detect": {"llm": {"finetune": {"nproc": 3}}}})
    proc = _finetune(work, 1, "bad", params="params-bad.yaml")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        "error: params-bad.yaml: detect.llm.finetune: batch_size 4 must be divisible by nproc 3", proc.stderr
    assert not (work / "bad").exists()


def test_params_refuse_a_batch_that_does_not_split():
    from pydantic import ValidationError

    from audioprobe.detect.llm.params import LlmFinetune

    assert LlmFinetune().nproc == 1 and LlmFinetune(batch_size=8, nproc=4).nproc == 4
    with pytest.raises(ValidationError, match="batch_size 8 must be divisible by nproc 3"):
        LlmFinetune(batch_size=8, nproc=3)


def test_lora_dropouts_become_sharded_dropouts(work):
    """Every peft LoRA dropout is swapped for a ShardedDropout of the same p (p = 0: nothing to swap)."""
    from audioprobe.detect.llm.finetune import lora_model, shard_lora_dropout
    from audioprobe.detect.llm.model import load_base
    from audioprobe.detect.llm.params import LlmLora, LlmModel
    from audioprobe.parallel.dist import ShardedDropout

    model = lora_model(load_base(work / "base", LlmModel(device="cpu")).model, LlmLora(dropout=0.2), True)
    n_lora = sum(1 for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict))
    assert shard_lora_dropout(model) == n_lora > 0
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(isinstance(m, ShardedDropout) and m.p == 0.2 for m in drops)
    bare = lora_model(load_base(work / "base", LlmModel(device="cpu")).model, LlmLora(dropout=0.0), True)
    assert shard_lora_dropout(bare) == 0
