"""End-to-end kws lane with the real dvc on a temp copy: tiny embedded corpus and real fixtures."""

from __future__ import annotations

import json
import re

import pytest

from audioprobe.runtime import numerics
from conftest import HOSTILE_NUMERICS

# Tiny everything: 5 speakers x 4 words (3/1/1 speakers per split), a 2-layer net, 1 epoch.
TINY_KWS = {
    "features": {"n_mels": 20, "hop": 320},
    "model": {"n_mels": 20, "n_embd": 8, "n_layer": 2, "mlp_hidden": 16, "units": 11},
    "train": {"replicas": [0, 1], "epochs": 1, "batch_size": 16},
    "analyze": {"clips": 8},
}
TINY_CORPUS = {"data": {"speech_commands": {"embedded": {"speakers": 5, "words": 4, "noise_seconds": 1.0}}}}
TABLES = ("runs.csv", "conditions.csv", "layers.csv", "layers_by_run.csv", "thresholds.csv", "confusion.csv",
          "per_class.csv", "comparison.csv", "seed_reference.csv", "provenance.json")


def _metrics(repo) -> dict:
    text = (repo.root / "metrics/kws.json").read_text()
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"metrics/kws.json holds {c}"))


def _ran(stdout: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", stdout))


def _check_common(repo, m: dict, n_classes: int, source: str) -> None:
    assert len(m) <= 24 and all(k.startswith("kws.") for k in m)
    assert all(isinstance(v, (int, float, str, bool)) for v in m.values())
    assert m["kws.chance_acc"] == pytest.approx(1 / n_classes) and m["kws.replicas"] == 2
    assert re.fullmatch(rf"{source}@[0-9a-f]{{12}}", m["kws.data.speech_commands"])
    assert re.fullmatch(r"trained-here@[0-9a-f]{12}", m["kws.weights.kws_net"])
    assert m["kws.synthetic"] is (source == "embedded")
    for cond in ("base", "lif"):
        assert 0.0 <= m[f"kws.{cond}.test_acc.mean"] <= 1.0
    assert m["kws.hierarchy"] in {"increasing", "decreasing", "flat", "none"}
    assert m["kws.ttest.p"] == "n/a" or 0.0 <= m["kws.ttest.p"] <= 1.0
    assert (m["kws.lif_gain.mean"] == "n/a") == (m["kws.lif_gain.ci95_low"] == "n/a")
    for name in TABLES:
        assert (repo.root / "plots/kws/analyze" / name).is_file(), name
    for replica, cond in (("0", "base"), ("1", "lif")):
        tsv = (repo.root / f"plots/kws/train/{replica}/{cond}/plots/metrics/val_acc.tsv").read_text().splitlines()
        assert tsv[0] == "step\tval_acc\tbanner" and len(tsv) == 2  # 1 epoch; the chart's banner column
    confusion = (repo.root / "plots/kws/analyze/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted,count,banner" and len(confusion) == 1 + n_classes**2
    layers = (repo.root / "plots/kws/analyze/layers.csv").read_text()
    assert "base,0,1.0,1.0,0.0,0.0" in layers  # base fires always: rate 1, entropy 0, drawn
    assert not list((repo.root / "plots/kws").glob("*.png"))


@pytest.mark.slow
@pytest.mark.e2e
def test_kws_lane_embedded_then_new_seed(temp_repo):
    repo = temp_repo
    repo.set_params({**TINY_CORPUS, "kws": TINY_KWS})
    repo.commit("tiny kws")
    repo.env.update(HOSTILE_NUMERICS)  # every stage process must pin over it

    first = repo.run("dvc", "repro", "kws_analyze")
    ran = _ran(first.stdout)
    assert {"data_download@speech_commands", "kws_features", "kws_analyze"} <= ran
    assert {"kws_train@0", "kws_train@1"} <= ran
    assert not any(s.startswith("data_download@") and s != "data_download@speech_commands" for s in ran)
    m1 = _metrics(repo)
    _check_common(repo, m1, n_classes=4, source="embedded")
    assert m1["kws.n_test"] == 4
    assert "Running stage" not in repo.run("dvc", "repro", "kws_analyze").stdout
    ran_with = json.loads((repo.root / "plots/kws/analyze/provenance.json").read_text())["numerics"]
    if numerics.cpu_supports_reference()[0]:
        assert ran_with == {"mode": "pinned", **numerics.PINNED_ENV, "torch_cpu_capability": "AVX2"}

    repo.commit("first kws run")
    exp = repo.run("dvc", "exp", "run", "-S", "seed=668", "kws_analyze")
    ran = _ran(exp.stdout)
    assert "kws_features" not in ran and not any(s.startswith("data_download@") for s in ran)
    assert "kws_train@1" in ran and "kws_analyze" in ran
    m2 = _metrics(repo)
    assert m2["kws.weights.kws_net"] != m1["kws.weights.kws_net"]
    assert m2["kws.data.speech_commands"] == m1["kws.data.speech_commands"]


@pytest.mark.slow
@pytest.mark.e2e
def test_kws_lane_on_real_fixtures(temp_repo, fixtures_dir):
    repo = temp_repo
    sc = (fixtures_dir / "speech_commands").resolve()
    repo.set_params({"data": {"speech_commands": {"source": "path", "path": str(sc)}},
                     "kws": {**TINY_KWS, "train": {**TINY_KWS["train"], "batch_size": 64,
                                                   "augment": {"enabled": True}}}})
    repo.commit("real fixtures")
    repo.run("dvc", "repro", "kws_analyze")
    m = _metrics(repo)
    _check_common(repo, m, n_classes=35, source="path")
    assert m["kws.n_test"] == 94
