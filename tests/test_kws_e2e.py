"""End-to-end kws lane with the real dvc on a temp copy: tiny embedded corpus and real fixtures."""

from __future__ import annotations

import json
import re

import pytest

# Tiny everything: 5 speakers x 4 words (3/1/1 speakers per split), a 2-layer net, 1 epoch.
TINY_KWS = {
    "model": {"n_embd": 8, "n_layer": 2, "mlp_hidden": 16, "units": 11},
    "train": {"replicas": [0, 1], "epochs": 1, "batch_size": 16},
    "analyze": {"clips": 8},
}
TINY_CORPUS = {"data": {"speech_commands": {"embedded": {"speakers": 5, "words": 4, "noise_seconds": 1.0}}}}


def _metrics(repo) -> dict:
    text = (repo.root / "metrics/kws.json").read_text()
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"metrics/kws.json holds {c}"))


def _ran(stdout: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", stdout))


def _check_common(m: dict, n_classes: int) -> None:
    assert all(isinstance(v, (int, float, str, bool)) for v in m.values())
    assert m["data.n_classes"] == n_classes and m["chance_acc"] == pytest.approx(1 / n_classes)
    assert re.fullmatch(r"[0-9a-f]{64}", m["data.sha256"])
    assert m["weights"] == "trained-from-scratch"
    for cond in ("base", "lif"):
        assert m[f"{cond}.test_acc.n"] == 2
        assert 0.0 <= m[f"{cond}.test_acc.mean"] <= 1.0
        for r in (0, 1):
            assert re.fullmatch(r"[0-9a-f]{64}", m[f"{cond}.r{r}.checkpoint_sha256"])
        for layer in (0, 1):
            assert 0.0 <= m[f"{cond}.layer{layer}.fire_rate"] <= 1.0
        assert m[f"{cond}.hierarchy.entropy"] in {"increasing", "decreasing", "flat", "none"}
    assert m["base.layer0.entropy"] == 0.0 and m["base.layer1.fire_rate"] == 1.0
    assert 0.0 <= m["lif.layer1.entropy"] <= 2.31  # log 10 bounds a 10-bin entropy
    assert m["lif.layer0.threshold_mean"] > 0.0 and "base.layer0.threshold_mean" not in m
    assert m["ttest.n_pairs"] == 2 and m["ttest.status"] in {"ok", "n/a: paired differences have zero variance"}
    assert m["model.cfc_impl"] == "fast" and m["model.norm_preserve"] is False


@pytest.mark.e2e
def test_kws_lane_embedded_then_new_seed(temp_repo):
    repo = temp_repo
    repo.set_params({**TINY_CORPUS, "kws": TINY_KWS})
    repo.commit("tiny kws")

    first = repo.run("dvc", "repro", "kws_analyze")
    ran = _ran(first.stdout)
    assert {"download@speech_commands", "kws_features", "kws_analyze"} <= ran
    assert {f"kws_train@{c}-{r}" for c in ("base", "lif") for r in (0, 1)} <= ran
    assert not any(s.startswith("download@") and s != "download@speech_commands" for s in ran)
    m1 = _metrics(repo)
    _check_common(m1, n_classes=4)
    assert m1["data.source"] == "embedded" and m1["data.n_test"] == 4
    for name in ("layers.csv", "thresholds.csv", "confusion.csv", "comparison.csv", "curves.png",
                 "organisation.png", "curves/base-0.csv", "curves/lif-1.csv"):
        assert (repo.root / "plots/kws" / name).is_file(), name
    comparison = (repo.root / "plots/kws/comparison.csv").read_text()
    assert "Transformer / Text" in comparison and "CfC / Audio" in comparison
    assert (repo.root / "plots/kws/confusion.csv").read_text().startswith("actual,predicted\n")
    assert "Running stage" not in repo.run("dvc", "repro", "kws_analyze").stdout

    repo.commit("first kws run")
    exp = repo.run("dvc", "exp", "run", "-S", "seed=668", "kws_analyze")
    ran = _ran(exp.stdout)
    assert "kws_features" not in ran and not any(s.startswith("download@") for s in ran)
    assert "kws_train@lif-1" in ran and "kws_analyze" in ran
    m2 = _metrics(repo)
    assert m2 != m1
    assert m2["base.r0.torch_seed"] != m1["base.r0.torch_seed"]
    assert m2["data.sha256"] == m1["data.sha256"]


@pytest.mark.e2e
def test_kws_lane_on_real_fixtures(temp_repo, fixtures_dir):
    repo = temp_repo
    sc = (fixtures_dir / "speech_commands").resolve()
    repo.set_params({"data": {"speech_commands": {"source": "path", "path": str(sc)}},
                     "kws": {**TINY_KWS, "train": {**TINY_KWS["train"], "batch_size": 64}}})
    repo.commit("real fixtures")
    repo.run("dvc", "repro", "kws_analyze")
    m = _metrics(repo)
    _check_common(m, n_classes=35)
    assert m["data.source"] == "path"
    assert (m["data.n_train"], m["data.n_validation"], m["data.n_test"]) == (509, 76, 94)
    assert m["analyze.clips"] == 8
