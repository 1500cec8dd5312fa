"""kws training under torchrun: 1 process vs 2 (gloo, CPU) train the same; a crashing rank fails cleanly.

Tolerance of the 1-vs-2 comparison: both runs see the same global batches, the same
augmentation draws and the same dropout masks (dist.ShardedDropout), so they differ only in
float reduction order: each rank's matmuls run on half the rows (different blocking) and the
gradient is the average of two half-batch sums instead of one sum. Per step that is ~1e-7
relative, but Adam divides every gradient by its own running RMS, so parameters whose
gradient is a near-cancelling sum (~1e-7) turn those rounding differences into
lr-sized differences of their updates: training itself amplifies float noise. Measured on
this tiny setup: scaling the initial weights of ONE process by (1 + 1e-7·N(0,1)) moves the
final weights by 8e-3 at lr 0.01 and by 9e-5 at lr 0.001. The test therefore trains at
lr 0.001, where 1 vs 2 processes stay within 1e-3 in every weight and 1e-5 in every loss,
and the exact-count metrics (accuracies, predictions, best epoch) agree exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from audioprobe.parallel import dist
from audioprobe.kws.features import SPLITS
from conftest import REPO, stage_env

N_MELS, FRAMES, WORDS = 12, 9, ["yes", "no", "up"]
# 41 train rows at batch 8: the last global batch has 1 row, so rank 1 holds none there.
COUNTS = {"train": 41, "validation": 12, "test": 12}
TINY = {"kws": {
    "features": {"n_mels": N_MELS},
    "model": {"n_mels": N_MELS, "n_embd": 8, "n_layer": 2, "mlp_hidden": 16, "units": 11, "dropout": 0.1},
    "train": {"replicas": [0], "epochs": 3, "batch_size": 8, "lr": 0.001, "eval_batch_size": 5, "threads": 1,
              "device": "cpu"},
}}


def write_fake_cache(dest: Path) -> Path:
    """A hand-built kws feature cache: class-shifted noise, 3 words, no background noise."""
    dest.mkdir(parents=True)
    g = np.random.default_rng(0)
    labels = np.concatenate([np.arange(n) % len(WORDS) for n in COUNTS.values()]).astype(np.int16)
    split = np.concatenate([np.full(n, i) for i, n in enumerate(COUNTS.values())]).astype(np.int8)
    feats = g.normal(size=(labels.size, FRAMES, N_MELS)).astype(np.float32) + labels[:, None, None]
    np.save(dest / "features.npy", feats)
    np.save(dest / "labels.npy", labels)
    np.save(dest / "split.npy", split)
    np.save(dest / "noise.npy", np.zeros((0, FRAMES, N_MELS), np.float32))
    relpaths = [f"{WORDS[lab]}/{i:04d}_nohash_0.wav" for i, lab in enumerate(labels)]
    (dest / "clips.json").write_text(json.dumps({"relpath": relpaths, "speaker": [r[-16:-12] for r in relpaths]}))
    meta = {"words": WORDS, "n_clips": int(labels.size), "n_mels": N_MELS, "frames": FRAMES,
            "split_counts": {s: COUNTS[s] for s in SPLITS}, "data": {"source": "test", "sha256": "0" * 64}}
    (dest / "meta.json").write_text(json.dumps(meta))
    return dest


def run_stage(tmp: Path, nproc: int, name: str, override: dict | None = None, env: dict | None = None,
              condition: str = "lif") -> subprocess.CompletedProcess:
    """Run kws_train through audioprobe.parallel.launch with `nproc` processes; outputs under tmp/name."""
    params = tmp / f"params-{name}.yaml"
    cfg = json.loads(json.dumps(TINY))
    for k, v in (override or {}).items():
        cfg["kws"]["train"][k] = v
    params.write_text(yaml.safe_dump(cfg))
    features = tmp / "features"
    if not features.exists():
        write_fake_cache(features)
    cmd = [sys.executable, "-m", "audioprobe.parallel.launch", "--nproc", str(nproc), "-m", "stages.kws_train",
           "--condition", condition, "--replica", "0", "--seed", "42", "--features", str(features),
           "--out", str(tmp / name / "run"), "--live", str(tmp / name / "live"), "--params", str(params),
           "--no-progress"]
    full_env = {**os.environ, "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{REPO}", **(env or {})}
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=300)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


# ---- unit pieces (no processes) -------------------------------------------------------


def _fake(rank: int, world: int) -> dist.Dist:
    return dist.Dist(rank, world, rank, torch.device("cpu"), "gloo" if world > 1 else None)


def test_global_batch_sampler_world1_is_the_plain_order_and_ranks_partition_it():
    n, b = 21, 8
    plain = torch.randperm(n, generator=torch.Generator().manual_seed(3))
    one = list(dist.GlobalBatchSampler(n, b, torch.Generator().manual_seed(3), _fake(0, 1)))
    assert [t.tolist() for t in one] == [plain[s : s + b].tolist() for s in range(0, n, b)]
    shards = [list(dist.GlobalBatchSampler(n, b, torch.Generator().manual_seed(3), _fake(r, 2))) for r in (0, 1)]
    assert [len(s) for s in shards] == [3, 3]
    for step, whole in enumerate(one):  # rank r holds rows r, r+2, ... of every global batch
        assert shards[0][step].tolist() == whole[0::2].tolist()
        assert shards[1][step].tolist() == whole[1::2].tolist()
    sampler = dist.GlobalBatchSampler(n, b, torch.Generator(), _fake(1, 2))
    assert [sampler.global_size(i) for i in range(3)] == [8, 8, 5]  # nothing padded
    with pytest.raises(ValueError, match="not divisible by 3"):
        dist.GlobalBatchSampler(n, b, torch.Generator(), _fake(0, 3))


def test_sharded_dropout_gives_each_rank_its_rows_of_the_one_process_mask():
    x = torch.randn(6, 4, 5)
    drop = dist.ShardedDropout(0.3)
    torch.manual_seed(11)
    ref = torch.nn.Dropout(0.3)(x)
    halves = []
    for r in (0, 1):
        torch.manual_seed(11)
        drop.shard = (6, slice(r, None, 2))
        halves.append(drop(x[r::2]))
    assert torch.equal(halves[0], ref[0::2]) and torch.equal(halves[1], ref[1::2])
    torch.manual_seed(11)
    drop.shard = None
    assert torch.equal(drop(x), ref)  # no shard: nn.Dropout exactly
    drop.shard = (6, slice(0, None, 2))
    with pytest.raises(ValueError, match="rows"):
        drop(x)


def test_world1_dist_helpers_are_identities():
    d = dist.init("cpu")
    assert (d.rank, d.world, d.backend, d.is_main, d.distributed) == (0, 1, None, True, False)
    assert d.all_gather_object({"a": 1}) == [{"a": 1}]
    assert d.broadcast_object(5) == 5
    assert d.all_reduce_sum([2, 3]).tolist() == [2.0, 3.0]
    model = torch.nn.Linear(2, 2)
    assert d.wrap(model) is model and list(d.shard(5)) == [0, 1, 2, 3, 4]
    d.barrier()
    d.destroy()


def test_launch_refuses_a_batch_that_does_not_split(tmp_path):
    proc = run_stage(tmp_path, 1, "bad", override={"nproc": 3})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "params-bad.yaml: kws.train: batch_size 8 must be divisible by nproc 3")


def test_launch_usage_errors_are_one_line():
    for argv, msg in ((["--nproc", "2"], "missing -m MODULE"), (["--nproc", "0", "-m", "x"], "--nproc must be >= 1")):
        proc = subprocess.run([sys.executable, "-m", "audioprobe.parallel.launch", *argv], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO / "lib")})
        assert proc.returncode == 2 and msg in proc.stderr.strip().splitlines()[-1], proc.stderr


def test_failure_line_names_the_root_cause_not_its_echoes():
    from types import SimpleNamespace

    from audioprobe.parallel.launch import _failure_line

    def failure(exitcode, secondary=None, when=0.0, message=""):
        data = {} if secondary is None else {"audioprobe": {"secondary": secondary, "time": when}}
        return SimpleNamespace(error_file_data=data, message=message, timestamp=int(when), exitcode=exitcode,
                               signal_name=lambda: "SIGKILL")

    echo = failure(1, secondary=True, when=1.0, message="DistBackendError: Connection closed by peer")
    cause = failure(1, secondary=False, when=2.0, message="RuntimeError: boom")
    assert _failure_line("stages.x", 3, {0: echo, 2: cause}) == (
        "error: stages.x: rank 2 of 3 failed (exit code 1): RuntimeError: boom")
    killed = failure(-9)  # no error file: the OOM killer, say
    assert _failure_line("stages.x", 2, {1: killed}) == "error: stages.x: rank 1 of 2 failed (exit code -9): signal SIGKILL"


# ---- real processes -------------------------------------------------------------------


@pytest.mark.slow
def test_one_and_two_processes_train_the_same(tmp_path):
    # Augmentation on: it is drawn over the whole global batch, then sharded (training.py).
    override = {"augment": {"enabled": True, "max_shift": 2}}
    one = run_stage(tmp_path, 1, "one", override)
    two = run_stage(tmp_path, 2, "two", override)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 processes (gloo)" in two.stdout and "processes" not in one.stdout
    a, b = (json.loads((tmp_path / n / "run/result.json").read_text()) for n in ("one", "two"))
    # Exact counts agree exactly; losses to float reduction order (module docstring).
    for key in ("best_epoch", "best_val_acc", "test_acc", "n_train", "n_params", "device"):
        assert a[key] == b[key], key
    assert b["test_loss"] == pytest.approx(a["test_loss"], abs=1e-5)
    assert ((tmp_path / "one/run/test_predictions.csv").read_text()
            == (tmp_path / "two/run/test_predictions.csv").read_text())
    for metric in ("train_loss", "val_loss", "train_acc", "val_acc"):
        rows = [(tmp_path / n / f"live/plots/metrics/{metric}.tsv").read_text().splitlines()[1:] for n in ("one", "two")]
        va, vb = ([float(r.split("\t")[1]) for r in rs] for rs in rows)
        assert len(va) == len(vb) == 3
        assert vb == pytest.approx(va, abs=1e-5 if "loss" in metric else 0), metric
    wa, wb = _weights(tmp_path / "one/run"), _weights(tmp_path / "two/run")
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert diff < 1e-3, diff
    # ... and the runs did not merely stand still: the train loss fell epoch after epoch.
    losses = [float(r.split("\t")[1]) for r in
              (tmp_path / "one/live/plots/metrics/train_loss.tsv").read_text().splitlines()[1:]]
    assert losses[0] > losses[1] > losses[2], losses


def test_a_crashing_rank_fails_the_stage_in_one_line_and_writes_nothing(tmp_path):
    # A previous good run's folder must survive untouched (outputs persist in dvc.yaml).
    old = tmp_path / "crash/run"
    old.mkdir(parents=True)
    (old / "result.json").write_text("last good\n")
    proc = run_stage(tmp_path, 2, "crash", env={dist.FAULT_ENV: "epoch2@1"})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ("error: stages.kws_train: rank 1 of 2 failed (exit code 1): RuntimeError: injected test fault"
                    f" ({dist.FAULT_ENV}=epoch2@1)"), proc.stderr[-3000:]
    assert "ChildFailedError" not in proc.stderr
    assert "rank 0: stopped because another rank failed" in proc.stderr
    assert (old / "result.json").read_text() == "last good\n" and sorted(os.listdir(old)) == ["result.json"]
    assert not (tmp_path / "crash/live").exists()
    assert sorted(p.name for p in (tmp_path / "crash").iterdir()) == ["run"]  # no .run.tmp / .live.tmp left


def test_a_stopped_launcher_stops_its_workers_quietly_and_writes_nothing(tmp_path):
    """SIGTERM to `audioprobe.parallel.launch --nproc 2` (what audioprobe.parallel.procs sends a side-by-side run
    when its sibling failed): exit 143, no traceback, the workers' temp folders removed."""
    import signal
    import time

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"kws": {**TINY["kws"], "train": {**TINY["kws"]["train"], "epochs": 500}}}))
    write_fake_cache(tmp_path / "features")
    cmd = [sys.executable, "-m", "audioprobe.parallel.launch", "--nproc", "2", "-m", "stages.kws_train",
           "--condition", "lif", "--replica", "0", "--seed", "42", "--features", str(tmp_path / "features"),
           "--out", str(tmp_path / "out/run"), "--live", str(tmp_path / "out/live"), "--params", str(params),
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "out/.run.tmp").exists():  # rank 0 is training
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err and "SignalException" not in err, err[-3000:]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device: the fast CfC's CUDA-vs-CPU parity runs on GPU machines only")
@pytest.mark.parametrize("wiring", ["autoncp", "dense"])
def test_fast_cfc_on_cuda_matches_cpu(wiring):
    from audioprobe.cells.cfc import build_cfc

    torch.manual_seed(0)
    cfc = build_cfc("fast", wiring, 16, 24, 0.5, 22222)
    x = torch.randn(5, 30, 16, requires_grad=True)
    y_cpu, h_cpu = cfc(x)
    (y_cpu.square().mean() + h_cpu.sum()).backward()
    grads_cpu = [p.grad.clone() for p in cfc.parameters() if p.grad is not None] + [x.grad.clone()]
    cfc.zero_grad()
    gpu, xg = cfc.cuda(), x.detach().cuda().requires_grad_(True)
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 parity, not TF32's 10-bit mantissa
    try:
        y_gpu, h_gpu = gpu(xg)
        (y_gpu.square().mean() + h_gpu.sum()).backward()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    grads_gpu = [p.grad.cpu() for p in gpu.parameters() if p.grad is not None] + [xg.grad.cpu()]
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h_gpu.cpu(), h_cpu, atol=1e-5, rtol=1e-4)
    for gg, gc in zip(grads_gpu, grads_cpu, strict=True):
        torch.testing.assert_close(gg, gc, atol=1e-4, rtol=1e-3)
    # bf16 autocast (kws.train.amp) around it: the scan itself stays fp32, outputs stay close.
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y_amp, _ = gpu(xg)
    assert y_amp.dtype == torch.float32
    torch.testing.assert_close(y_amp.float().cpu(), y_cpu, atol=2e-2, rtol=2e-2)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device: the kws bf16 training smoke test runs on GPU machines only")
def test_kws_trains_on_cuda_with_bf16_autocast(tmp_path):
    proc = run_stage(tmp_path, 1, "cuda", override={"device": "cuda", "amp": "bf16", "loader_workers": 2})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads((tmp_path / "cuda/run/result.json").read_text())
    assert rec["device"].startswith("cuda") and 0.0 <= rec["test_acc"] <= 1.0
