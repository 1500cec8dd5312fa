"""kws training loop: same seed twice gives bit-identical results on CPU; seeds derive per replica."""

from __future__ import annotations

import pytest
import torch

from audioprobe.kws.net import build_kws_net, param_groups
from audioprobe.kws.params import KwsModel
from audioprobe.kws.training import evaluate, make_deterministic, replica_seed, train

TINY = KwsModel(n_mels=12, n_embd=8, n_layer=2, mlp_hidden=16, units=11, dropout=0.1)


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 9, 12, generator=g) + y.view(n, 1, 1).float()  # (N, T, n_mels), class-shifted
    return x, y


def _run(condition: str, seed: int):
    make_deterministic(seed, threads=1, device=torch.device("cpu"))
    model = build_kws_net(TINY, condition, n_classes=3)
    result = train(
        model, param_groups(model, 0.01), _data(24, 0), _data(9, 1), epochs=2, batch_size=8, lr=1e-2,
        grad_clip=1.0, eval_batch_size=16, seed=seed, device=torch.device("cpu"), progress=False,
    )
    model.load_state_dict(result.best_state)
    test = evaluate(model, *_data(9, 2), 16, torch.device("cpu"))
    return result, test


@pytest.mark.parametrize("condition", ["base", "lif"])
def test_same_seed_is_bit_identical(condition):
    a, test_a = _run(condition, seed=7)
    b, test_b = _run(condition, seed=7)
    assert a.history == b.history and a.best_epoch == b.best_epoch
    assert a.best_state.keys() == b.best_state.keys()
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)
    assert test_a[:2] == test_b[:2] and (test_a[2] == test_b[2]).all()
    c, _ = _run(condition, seed=8)
    assert c.history != a.history


def test_history_and_best_epoch_are_consistent():
    result, (test_loss, test_acc, pred) = _run("lif", seed=3)
    assert [r.epoch for r in result.history] == [1, 2]
    assert result.best_val_acc == max(r.val_acc for r in result.history)
    assert result.history[result.best_epoch - 1].val_acc == result.best_val_acc
    assert 0.0 <= test_acc <= 1.0 and test_loss > 0 and pred.shape == (9,)


def test_replica_seed_depends_on_seed_and_replica():
    seeds = {replica_seed(s, r) for s in (42, 43, 668) for r in (0, 1, 2)}
    assert len(seeds) == 9  # seed 42 replica 1 is not seed 43 replica 0
    assert replica_seed(42, 0) == replica_seed(42, 0)
    assert all(0 <= s < 2**32 for s in seeds)


def test_empty_split_is_rejected():
    model = build_kws_net(TINY, "base", n_classes=3)
    empty = (torch.zeros(0, 9, 12), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="non-empty"):
        train(model, param_groups(model, 0.0), _data(6, 0), empty, epochs=1, batch_size=4, lr=1e-3,
              grad_clip=1.0, eval_batch_size=4, seed=0, device=torch.device("cpu"), progress=False)


def test_train_stage_outputs_are_bit_identical(fixtures_dir, tmp_path):
    """Two runs of the kws_train stage, same seed: identical checkpoint bytes, dvclive curves, predictions."""
    import json
    import subprocess
    import sys

    import yaml

    from audioprobe.data.speech_commands import list_clips
    from audioprobe.kws.features import SPLITS, write_feature_cache
    from conftest import REPO, deep_update

    root = fixtures_dir / "speech_commands"
    clips = [c for s in SPLITS for c in [c for c in list_clips(root) if c.split == s][:6]]
    feats = tmp_path / "features"
    feats.mkdir()
    meta = write_feature_cache(root, clips, feats, n_mels=80, n_fft=400, hop=160, progress=False)
    meta["data"] = {"source": "path", "sha256": "0" * 64}
    (feats / "meta.json").write_text(json.dumps(meta))
    params = deep_update(yaml.safe_load((REPO / "params.yaml").read_text()), {"kws": {
        "features": {"n_mels": 80, "n_fft": 400, "hop": 160},
        "model": {"n_mels": 80, "n_embd": 8, "n_layer": 2, "mlp_hidden": 16, "units": 11},
        "train": {"replicas": [0], "epochs": 2, "batch_size": 4}}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        subprocess.run(
            [sys.executable, "-m", "stages.kws_train", "--condition", "lif", "--replica", "0", "--seed", "42",
             "--features", str(feats), "--out", str(out), "--live", str(tmp_path / f"live{i}"),
             "--params", str(tmp_path / "params.yaml"),
             "--no-progress"],
            cwd=REPO, check=True, capture_output=True,
        )
        outs.append(out)
    for name in ("model.safetensors", "test_predictions.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    # dvclive curves: one TSV per metric, two rows (epochs), no timestamps, byte-identical
    live = [sorted(p.relative_to(tmp_path / f"live{i}") for p in (tmp_path / f"live{i}").rglob("*") if p.is_file())
            for i in range(2)]
    assert live[0] == live[1] and {str(p) for p in live[0]} == {
        "metrics.json", *(f"plots/metrics/{m}.tsv" for m in ("train_loss", "val_loss", "train_acc", "val_acc"))}
    for rel in live[0]:
        text = (tmp_path / "live0" / rel).read_text()
        assert text == (tmp_path / "live1" / rel).read_text(), rel
        assert "timestamp" not in text, rel
    val_acc = (tmp_path / "live0/plots/metrics/val_acc.tsv").read_text().splitlines()
    assert val_acc[0] == "step\tval_acc\tbanner" and [r.split("\t")[0] for r in val_acc[1:]] == ["1", "2"]
    a, b = (json.loads((o / "result.json").read_text()) for o in outs)
    assert a == b and a["epochs"] == 2 and a["norm_preserve"] is False and a["cfc_impl"] == "fast"


def test_lr_schedule_hand_values():
    from audioprobe.kws.training import lr_schedule

    const = lr_schedule("constant", 0.1, total_steps=10)
    assert const(0) == const(9) == 0.1
    cos = lr_schedule("cosine", 0.1, total_steps=12, warmup_steps=2)
    assert cos(0) == pytest.approx(0.05) and cos(1) == pytest.approx(0.1)  # linear warm-up
    assert cos(2) == pytest.approx(0.1)  # decay starts at the peak
    assert cos(7) == pytest.approx(0.05)  # half-way through the 10 decay steps
    assert cos(12) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="schedule"):
        lr_schedule("step", 0.1, 10)


def test_on_epoch_sees_every_record_and_augment_sees_every_batch():
    make_deterministic(5, threads=1, device=torch.device("cpu"))
    model = build_kws_net(TINY, "lif", n_classes=3)
    seen, batches = [], []

    def augment(xb, gen):
        batches.append(xb.shape[0])
        return xb + 0.01 * torch.randn(xb.shape, generator=gen)

    result = train(model, param_groups(model, 0.01), _data(20, 0), _data(9, 1), epochs=3, batch_size=8,
                   lr=1e-2, grad_clip=1.0, eval_batch_size=16, seed=5, device=torch.device("cpu"),
                   progress=False, schedule="cosine", warmup_epochs=1, augment=augment, on_epoch=seen.append)
    assert seen == result.history and [r.epoch for r in seen] == [1, 2, 3]
    assert batches == [8, 8, 4] * 3


def test_cuda_without_gpu_is_one_line_params_error(monkeypatch):
    from audioprobe.runtime.errors import ParamsError
    from audioprobe.kws.training import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParamsError, match="kws.train.device is 'cuda'"):
        select_device("cuda")
    assert select_device("auto") == torch.device("cpu")


def test_plateau_stop_on_hand_built_accuracies():
    from audioprobe.kws.training import PlateauStop

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    stopper = PlateauStop(opt, factor=0.1, patience=2, reductions=1)
    lrs, stops = [], []
    # 0.5 0.6 (best) | 0.6 0.55 0.6: three epochs without a strictly higher value -> lr 0.1
    # 0.7 (best) | 0.7 0.7 0.69: three more -> the one allowed cut is spent, so stop
    for acc in (0.5, 0.6, 0.6, 0.55, 0.6, 0.7, 0.7, 0.7, 0.69):
        stops.append(stopper.step(acc))
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1.0] * 4 + [0.1] * 5)
    assert stops == [False] * 8 + [True]  # and the lr it stopped at is kept on record (0.1, not 0.01)


def test_plateau_schedule_ends_the_run_after_the_best_epoch():
    from audioprobe.kws.training import lr_schedule

    warm = lr_schedule("plateau", 0.1, total_steps=100, warmup_steps=4)
    assert [warm(s) for s in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    make_deterministic(5, threads=1, device=torch.device("cpu"))
    model = build_kws_net(TINY, "base", n_classes=3)
    # lr 0: nothing moves, so validation accuracy is flat from epoch 1 and the run stops at
    # the first plateau it may not cut: epoch 1 + (patience + 1) x (reductions + 1) = 7 of 50
    result = train(model, param_groups(model, 0.01), _data(16, 0), _data(9, 1), epochs=50, batch_size=8,
                   lr=1e-12, grad_clip=1.0, eval_batch_size=16, seed=5, device=torch.device("cpu"),
                   progress=False, schedule="plateau", plateau=(0.1, 1, 2))
    assert result.stop == "plateau" and result.epochs_run == 7 and result.best_epoch == 1
    capped = train(model, param_groups(model, 0.01), _data(16, 0), _data(9, 1), epochs=5, batch_size=8,
                   lr=1e-12, grad_clip=1.0, eval_batch_size=16, seed=5, device=torch.device("cpu"),
                   progress=False, schedule="plateau", plateau=(0.1, 1, 2))
    assert capped.stop == "epochs" and capped.epochs_run == 5  # the cap is reported, not hidden
