"""End-to-end: the real dvc on a temp copy of the repo, data lane on tiny params."""

from __future__ import annotations

import json
import re

import pytest

TINY_DATA = {
    "data": {
        "speech_commands": {"embedded": {"speakers": 3, "words": 3, "noise_seconds": 1.0}},
        "librispeech": {"embedded": {"speakers": 3, "utterances": 1}},
        "esc50": {"embedded": {"classes": 2, "clips_per_fold": 1}},
        "musan": {"embedded": {"music": 1, "noise": 1, "speech": 1, "seconds": 1.0}},
        "reasonaqa": {"embedded": {"rows": 12, "clips": 6}},
    }
}


def _flat_values(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _flat_values(v)
    else:
        yield obj


@pytest.mark.slow
@pytest.mark.e2e
def test_data_lane_fresh_clone_noop_metrics_plots(temp_repo):
    repo = temp_repo
    repo.set_params(TINY_DATA)
    repo.commit("tiny")

    cfg = (repo.root / ".dvc" / "config").read_text()
    assert re.search(r"analytics\s*=\s*false", cfg)

    dag = repo.run("dvc", "dag", "data_report").stdout
    for ds in ("speech_commands", "librispeech", "esc50", "musan", "reasonaqa"):
        assert f"data_download@{ds}" in dag

    first = repo.run("dvc", "repro", "data_report")
    assert "Running stage 'data_download@esc50'" in first.stdout
    assert "WARNING" not in first.stderr, first.stderr
    second = repo.run("dvc", "repro", "data_report")
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout

    data = json.loads((repo.root / "metrics/data.json").read_text())
    detail = json.loads((repo.root / "plots/data/report/summary.json").read_text())
    assert detail["speech_commands"]["speakers"] == 3 and detail["speech_commands"]["classes"] == 3
    assert data["data.esc50.clips"] == 2 * 5 and data["data.esc50.source"].startswith("embedded@")
    assert len(detail["librispeech"]["sha256"]) == 64 and data["data.synthetic"] is True
    assert data["data.librispeech.source"] == f"embedded@{detail['librispeech']['sha256'][:12]}"
    assert all(isinstance(v, (int, float, str, bool)) for v in _flat_values(data))

    shown = json.loads(repo.run("dvc", "metrics", "show", "--json").stdout)
    assert json.dumps(shown).count("data.esc50.clips") >= 1

    repo.commit("first run")
    repo.set_params({"data": {"esc50": {"embedded": {"clips_per_fold": 2}}}})
    out = repo.run("dvc", "repro", "data_report").stdout
    assert "Running stage 'data_download@esc50'" in out
    assert "Running stage 'data_download@speech_commands'" not in out  # other datasets untouched
    diff = json.loads(repo.run("dvc", "metrics", "diff", "--json").stdout)
    changed = diff["metrics/data.json"]
    assert changed["data.esc50.clips"]["old"] == 10 and changed["data.esc50.clips"]["new"] == 20

    html = repo.root / "plots_out"
    repo.run("dvc", "plots", "show", "-o", str(html))
    page = (html / "index.html").read_text()
    assert "<script src=" not in page  # nothing fetched from a CDN
    assert "vegaEmbed" in page and "durations.png" in page


TINY_LANES = {
    "kws": {
        "model": {"n_embd": 8, "n_layer": 2, "mlp_hidden": 16, "units": 11},
        "train": {"replicas": [0, 1], "epochs": 1, "batch_size": 16},
        "analyze": {"clips": 8},
    },
    "phase0": {
        "latents": {"batch_size": 4, "device": "cpu"},
        "conditioning": {"mean_vq_k": 4, "pca_vq_k": 8, "pca_components": 4, "kmeans_n_init": 1},
        "metrics": {"min_cluster_train_samples": 5},
    },
}
SEED_STAGES = {
    "kws_train@0", "kws_train@1", "kws_analyze",
    "phase0_speaker_split", "phase0_frames", "phase0_conditioning", "phase0_metrics", "phase0_report",
}


def _ran(stdout: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", stdout))


@pytest.mark.slow
@pytest.mark.e2e
def test_whole_pipeline_fresh_clone_then_new_seed(temp_repo):
    """Fresh clone: `dvc repro` runs every stage offline, a second is a no-op, and
    `dvc exp run -S seed=668` reruns exactly the seed-dependent stages, changing their metrics."""
    repo = temp_repo
    repo.set_params({**TINY_DATA, **TINY_LANES})
    repo.commit("tiny")

    # kws and phase0 only: the detect and reason lanes have their own end-to-end tests, and
    # the whole embedded default runs in tests/e2e/test_fresh_clone.py.
    targets = ("kws_analyze", "phase0_report", "data_report")
    first = repo.run("dvc", "repro", *targets)
    # DVC's own warnings; the reports' banners (synthetic data, random-init) are expected
    dvc_warnings = [ln for ln in first.stderr.splitlines()
                    if "WARNING" in ln and "synthetic data" not in ln and "random-init" not in ln]
    assert not dvc_warnings, first.stderr
    ran = _ran(first.stdout)
    assert SEED_STAGES | {"kws_features", "phase0_latents", "data_report"} <= ran
    assert "up to date" in repo.run("dvc", "repro", *targets).stdout
    before = {n: json.loads((repo.root / f"metrics/{n}.json").read_text()) for n in ("kws", "phase0", "data")}
    repo.commit("first run")

    exp = repo.run("dvc", "exp", "run", "-S", "seed=668", *targets)
    assert _ran(exp.stdout) == SEED_STAGES
    after = {n: json.loads((repo.root / f"metrics/{n}.json").read_text()) for n in ("kws", "phase0", "data")}
    assert after["data"] == before["data"]
    assert after["kws"]["kws.weights.kws_net"] != before["kws"]["kws.weights.kws_net"]
    assert after["kws"] != before["kws"] and after["phase0"] != before["phase0"]
    diff = json.loads(repo.run("dvc", "metrics", "diff", "--json").stdout)
    assert "metrics/kws.json" in diff and "metrics/phase0.json" in diff
    assert "metrics/data.json" not in diff or not diff["metrics/data.json"]
    shown = repo.run("dvc", "exp", "show", "--json").stdout
    assert "668" in shown


@pytest.mark.e2e
def test_bad_param_fails_one_line_no_output(temp_repo):
    repo = temp_repo
    repo.set_params({**TINY_DATA, "data": {**TINY_DATA["data"], "esc50": {"source": "ftp"}}})
    repo.commit("bad")
    proc = repo.run("dvc", "repro", "data_download@esc50", check=False)
    assert proc.returncode != 0
    assert "data.esc50.source" in proc.stderr + proc.stdout
    assert not (repo.root / "data/raw/esc50").exists()
