"""kws_train + kws_analyze as stage processes: a failing analyze leaves the last good metrics and
plot files byte for byte, and every stage process runs pinned over a hostile environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import polars as pl
import yaml

from audioprobe.runtime import numerics
from conftest import HOSTILE_NUMERICS, REPO, deep_update, stage_env


def _stage(*args, check=True):
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, check=check, capture_output=True, text=True,
                          env=stage_env(HOSTILE_NUMERICS))


def _snapshot(*folders):
    return {p: p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


def test_failed_analyze_keeps_last_good_outputs(fixtures_dir, tmp_path):
    from audioprobe.data.speech_commands import list_clips
    from audioprobe.kws.features import SPLITS, write_feature_cache

    root = fixtures_dir / "speech_commands"
    clips = [c for s in SPLITS for c in [c for c in list_clips(root) if c.split == s][:6]]
    feats = tmp_path / "features"
    feats.mkdir()
    meta = write_feature_cache(root, clips, feats, n_mels=80, n_fft=400, hop=160, progress=False,
                               data={"source": "path", "sha256": "0" * 64})
    assert meta["noise_segments"] > 0  # the fixtures carry _background_noise_
    params = deep_update(yaml.safe_load((REPO / "params.yaml").read_text()), {"kws": {
        "features": {"n_mels": 80, "hop": 160},
        "model": {"n_mels": 80, "n_embd": 8, "n_layer": 2, "mlp_hidden": 16, "units": 11},
        "train": {"replicas": [0], "epochs": 1, "batch_size": 8, "augment": {"enabled": True}},
        "analyze": {"clips": 4}}})
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    runs, live, plots, metrics = tmp_path / "runs", tmp_path / "live", tmp_path / "plots", tmp_path / "kws.json"
    for cond in ("base", "lif"):
        _stage("stages.kws_train", "--condition", cond, "--replica", "0", "--seed", "42", "--features", str(feats),
               "--out", str(runs / f"{cond}-0"), "--live", str(live / f"{cond}-0"), "--params", str(params_file),
               "--no-progress")
    analyze = ("stages.kws_analyze", "--features", str(feats), "--runs", str(runs), "--metrics", str(metrics),
               "--plots", str(plots), "--params", str(params_file))
    ran = _stage(*analyze)
    m = json.loads(metrics.read_text())
    assert m["kws.ttest.p"] == "n/a" and m["kws.lif_gain.mean"] == "n/a"  # one replica: undefined
    assert len(m) <= 24 and all(k.startswith("kws.") for k in m)
    # real data (a `path` source): every charted table and curve carries the banner column, empty,
    # so no chart says "synthetic" (issue 21); the console prints no 17-digit float
    from audioprobe.runtime.headline import BANNER_FIELD
    from stages.kws_analyze import CHARTED

    charted = [plots / n for n in CHARTED] + sorted((live / "lif-0").rglob("*.tsv"))
    assert len(charted) >= len(CHARTED) + 4
    for f in charted:
        t = pl.read_csv(f, separator="\t" if f.suffix == ".tsv" else ",", infer_schema_length=0)
        assert t.columns[-1] == BANNER_FIELD and set(t[BANNER_FIELD].fill_null("")) == {""}, f
    assert not re.search(r"\d\.\d{7,}", ran.stdout), ran.stdout
    good = _snapshot(plots) | {metrics: metrics.read_bytes()}
    assert len(good) >= 11
    # The stage pinned its own numeric environment over the hostile one it was started with, and
    # says so in provenance (the kernel ISA torch dispatched to, read in the stage process).
    ran_with = json.loads((plots / "provenance.json").read_text())["numerics"]
    if numerics.cpu_supports_reference()[0]:
        assert ran_with == {"mode": "pinned", **numerics.PINNED_ENV, "torch_cpu_capability": "AVX2"}

    (runs / "lif-0/model.safetensors").write_bytes(b"not a checkpoint")  # corrupt one run folder
    bad = _stage(*analyze, check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error: ")
    assert "lif-0" in bad.stderr and "Traceback" not in bad.stderr
    assert _snapshot(plots) | {metrics: metrics.read_bytes()} == good
    assert not [p for p in tmp_path.rglob(".*.tmp")]  # no hidden temp folder left behind
