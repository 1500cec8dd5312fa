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


@pytest.mark.e2e
def test_data_lane_fresh_clone_noop_metrics_plots(temp_repo):
    repo = temp_repo
    repo.set_params(TINY_DATA)
    repo.commit("tiny")

    cfg = (repo.root / ".dvc" / "config").read_text()
    assert re.search(r"analytics\s*=\s*false", cfg)

    dag = repo.run("dvc", "dag", "data_report").stdout
    for ds in ("speech_commands", "librispeech", "esc50", "musan", "reasonaqa"):
        assert f"download@{ds}" in dag

    first = repo.run("dvc", "repro", "data_report")
    assert "Running stage 'download@esc50'" in first.stdout
    assert "WARNING" not in first.stderr, first.stderr
    second = repo.run("dvc", "repro", "data_report")
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout

    data = json.loads((repo.root / "metrics/data.json").read_text())
    assert data["speech_commands.speakers"] == 3 and data["speech_commands.classes"] == 3
    assert data["esc50.clips"] == 2 * 5 and data["esc50.source"] == "embedded"
    assert len(data["librispeech.sha256"]) == 64
    assert all(isinstance(v, (int, float, str, bool)) for v in _flat_values(data))

    shown = json.loads(repo.run("dvc", "metrics", "show", "--json").stdout)
    assert json.dumps(shown).count("esc50.clips") >= 1

    repo.commit("first run")
    repo.set_params({"data": {"esc50": {"embedded": {"clips_per_fold": 2}}}})
    out = repo.run("dvc", "repro", "data_report").stdout
    assert "Running stage 'download@esc50'" in out
    assert "Running stage 'download@speech_commands'" not in out  # other datasets untouched
    diff = json.loads(repo.run("dvc", "metrics", "diff", "--json").stdout)
    changed = diff["metrics/data.json"]
    assert changed["esc50.clips"]["old"] == 10 and changed["esc50.clips"]["new"] == 20

    html = repo.root / "plots_out"
    repo.run("dvc", "plots", "show", "-o", str(html))
    page = (html / "index.html").read_text()
    assert "<script src=" not in page  # nothing fetched from a CDN
    assert "vegaEmbed" in page and "durations.png" in page


@pytest.mark.e2e
def test_seed_change_reruns_nothing_in_data_lane(temp_repo):
    repo = temp_repo
    repo.set_params(TINY_DATA)
    repo.commit("tiny")
    repo.run("dvc", "repro", "data_report")
    repo.commit("run")
    out = repo.run("dvc", "exp", "run", "-S", "seed=668", "data_report").stdout
    assert "Running stage" not in out


@pytest.mark.e2e
def test_bad_param_fails_one_line_no_output(temp_repo):
    repo = temp_repo
    repo.set_params({**TINY_DATA, "data": {**TINY_DATA["data"], "esc50": {"source": "ftp"}}})
    repo.commit("bad")
    proc = repo.run("dvc", "repro", "download@esc50", check=False)
    assert proc.returncode != 0
    assert "data.esc50.source" in proc.stderr + proc.stdout
    assert not (repo.root / "data/raw/esc50").exists()
