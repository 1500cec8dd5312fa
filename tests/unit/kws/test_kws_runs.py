"""The kws run folder (audioprobe.kws.runs): what write_run writes read_run reads back, and a
broken folder is one DataError naming it."""

from __future__ import annotations

import json

import pytest
import torch

from audioprobe.kws.runs import (
    FILES,
    METADATA_KEY,
    MODEL,
    RESULT,
    Prediction,
    TrainedRun,
    read_predictions,
    read_run,
    run_dir,
    write_run,
)
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.provenance import sha256_file

TRAINED = TrainedRun(
    condition="lif", replica=1, seed=42, torch_seed=7, best_epoch=3, best_val_acc=0.75, test_acc=0.5,
    test_loss=1.25, epochs=5, max_epochs=40, stop="plateau", n_classes=2, n_params=6, n_train=8,
    n_validation=2, n_test=2, cfc_impl="fast", wiring="autoncp", norm_preserve=False, device="cpu",
    threads=1, torch_version="x", data_sha256="0" * 64)
PREDICTIONS = [Prediction("yes/a_nohash_0.wav", "yes", "no"), Prediction("no/b_nohash_0.wav", "no", "no")]


def _write(tmp_path):
    folder = run_dir(tmp_path, "lif", 1)
    folder.mkdir(parents=True)
    net = torch.nn.Linear(2, 2)
    result = write_run(folder, net.state_dict(), PREDICTIONS, TRAINED)
    return folder, net, result


def test_round_trip(tmp_path):
    folder, net, result = _write(tmp_path)
    assert folder == tmp_path / "lif-1" and sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert result == {**TRAINED, "checkpoint_sha256": sha256_file(folder / MODEL)}
    assert (folder / RESULT).read_text() == json.dumps(result, indent=2, sort_keys=True) + "\n"
    run = read_run(folder)
    assert run.result == result and run.n_classes == 2
    other = torch.nn.Linear(2, 2)
    run.load_into(other)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), net.state_dict().values()))
    assert read_predictions(folder, ["yes", "no"], "features") == PREDICTIONS
    from safetensors import safe_open

    with safe_open(str(folder / MODEL), "pt") as f:
        assert json.loads(f.metadata()[METADATA_KEY]) == {
            "condition": "lif", "replica": 1, "seed": 42, "torch_seed": 7, "epoch": 3}


def test_two_writes_are_byte_identical(tmp_path):
    a, _, _ = _write(tmp_path / "a")
    b = run_dir(tmp_path / "b", "lif", 1)
    b.mkdir(parents=True)
    write_run(b, read_run(a).state, PREDICTIONS, TRAINED)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in FILES)


def test_broken_folders_are_one_line_data_errors(tmp_path):
    folder, _, _ = _write(tmp_path)
    with pytest.raises(DataError, match="does not match params.yaml kws.model"):
        read_run(folder).load_into(torch.nn.Linear(3, 2))
    with pytest.raises(DataError, match=r"test_predictions.csv: words \['yes'\] are not in features"):
        read_predictions(folder, ["no"], "features")
    (folder / RESULT).write_text(json.dumps({"condition": "lif"}))
    with pytest.raises(DataError, match="result.json: no best_epoch"):
        read_run(folder)
    (folder / MODEL).write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="unreadable run files"):
        read_run(folder)
    (folder / MODEL).unlink()
    with pytest.raises(DataError, match=f"missing {MODEL}"):
        read_run(folder)
