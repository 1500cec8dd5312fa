"""The `audioprobe` console command: groups, params check, data check."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from audioprobe.tools.cli import app

runner = CliRunner()


def test_help_lists_data_experiment_and_utility_groups():
    out = runner.invoke(app, ["--help"]).output
    for group in ("data", "exp", "util"):
        assert group in out
    assert "synth" in runner.invoke(app, ["data", "--help"]).output
    assert "seed" in runner.invoke(app, ["exp", "--help"]).output
    assert "bench" in runner.invoke(app, ["util", "--help"]).output


def test_util_params_valid_and_invalid(tmp_path):
    ok = runner.invoke(app, ["util", "params", "params.yaml"])
    assert ok.exit_code == 0 and "valid" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nkws:\n  train:\n    epochs: ten\n")
    res = runner.invoke(app, ["util", "params", str(bad)])
    assert res.exit_code == 1
    assert "kws.train.epochs" in res.output and len(res.output.strip().splitlines()) == 1


def test_data_check_real_fixtures_and_wrong_layout(fixtures_dir):
    ok = runner.invoke(app, ["data", "check", "speech_commands", str(fixtures_dir / "speech_commands")])
    assert ok.exit_code == 0 and "685 audio files checked, 0 problem(s)" in ok.output
    wrong = runner.invoke(app, ["data", "check", "esc50", str(fixtures_dir / "LibriSpeech")])
    assert wrong.exit_code == 1 and "meta/esc50.csv" in wrong.output


def test_data_synth_writes_official_layout(tmp_path):
    res = runner.invoke(app, ["data", "synth", "esc50", "--out", str(tmp_path / "esc")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "esc/ESC-50/meta/esc50.csv").is_file()
    assert (tmp_path / "esc/source.json").is_file()


def test_version_from_the_package():
    from audioprobe import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"audioprobe {__version__}"


@pytest.mark.parametrize("args", [["data", "check", "speech_comands", "."], ["data", "synth", "esc-50", "--out", "x"]])
def test_unknown_dataset_is_one_line_listing_the_choices(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    err = [ln for ln in res.output.splitlines() if "Error" in ln]
    assert len(err) == 1, res.output
    assert all(d in err[0] for d in ("speech_commands", "librispeech", "esc50", "musan", "reasonaqa"))


def test_data_summary_names_each_dataset(tmp_path):
    res = runner.invoke(app, ["data", "summary", "--raw", str(tmp_path)])
    lines = res.output.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["speech_commands", "librispeech", "esc50", "musan", "reasonaqa"]
    out = tmp_path / "esc50"
    assert runner.invoke(app, ["data", "synth", "esc50", "--out", str(out)]).exit_code == 0
    line = runner.invoke(app, ["data", "summary", "--raw", str(tmp_path)]).output.splitlines()[2]
    assert line.startswith("esc50: clips=") and "source=embedded" in line


def test_data_check_lists_every_problem_and_exits_1(tmp_path):
    from audioprobe.audio.io import write_audio
    import numpy as np

    root = tmp_path / "sc"
    (root / "yes").mkdir(parents=True)
    for name in ("validation_list.txt", "testing_list.txt"):
        (root / name).write_text("")
    write_audio(root / "yes" / "aaaa0001_nohash_0.wav", np.full(800, 0.1, np.float32), 8000)
    write_audio(root / "yes" / "aaaa0002_nohash_0.WAV", np.full(800, 0.1, np.float32), 16000)
    res = runner.invoke(app, ["data", "check", "speech_commands", str(root), "-q"])
    assert res.exit_code == 1
    assert "aaaa0001_nohash_0.wav: sample rate 8000 Hz" in res.output
    assert "aaaa0002_nohash_0.WAV: upper-case suffix" in res.output
    assert "speech_commands: 1 audio files checked, 2 problem(s)" in res.output


def test_exp_show_keeps_one_lanes_headline_metrics_and_drops_its_params():
    import re

    from audioprobe.tools.cli import exp_show_args

    args = exp_show_args("kws")
    keep = re.compile(args[args.index("--keep") + 1])
    assert args[args.index("--drop") + 1] == ".*"
    for column in ("Experiment", "seed", "kws.base.test_acc.mean", "kws.ttest.p"):
        assert keep.search(column), column
    for column in ("kws.train.lr", "kws.model.n_embd", "kws.data.speech_commands", "phase0.decision", "seed2",
                   "kws.base.test_acc.mean2"):
        assert not keep.search(column), column


def test_every_exp_show_column_is_a_key_of_the_committed_metrics():
    import json

    from audioprobe.tools.cli import LANES
    from audioprobe.runtime.params import schema_for  # noqa: F401  (lanes' params modules import)

    repo = Path(__file__).resolve().parents[3]
    for lane in (name for name in LANES if name != "data"):
        import importlib

        keys = json.loads((repo / f"metrics/{lane}.json").read_text())
        for col in importlib.import_module(f"audioprobe.{lane}.params").EXP_SHOW:
            assert f"{lane}.{col}" in keys, f"{lane}.{col}"


def test_unknown_lane_is_one_line_listing_the_choices():
    result = runner.invoke(app, ["exp", "show", "kwz"])
    assert result.exit_code == 2
    assert "kwz" in result.output and "kws" in result.output and "reason" in result.output
    assert "Traceback" not in result.output


def test_exp_run_selects_a_lane_as_the_glob_over_its_stage_names(monkeypatch):
    """`audioprobe exp run phase0` must reach every phase0 stage, Tier 1 included (the lane's last
    stage used to be its report, which silently left Tier 1 out)."""
    import subprocess
    import sys

    import yaml

    from audioprobe.tools import cli

    calls = []
    monkeypatch.setattr(cli, "_dvc", lambda *args: calls.append(args))
    assert runner.invoke(app, ["exp", "run", "phase0"]).exit_code == 0
    assert runner.invoke(app, ["exp", "run"]).exit_code == 0
    assert calls == [("repro", "--glob", "phase0_*"), ("repro",)]

    repo = Path(__file__).resolve().parents[3]
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    env = {"DVC_NO_ANALYTICS": "1", "PATH": str(Path(sys.executable).parent)}
    for lane in cli.LANES:
        dry = subprocess.run([sys.executable, "-m", "dvc", *cli.lane_repro_args(lane), "--dry", "--force"],
                             cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert dry.returncode == 0, dry.stderr
        ran = {line.split("'")[1].split("@")[0] for line in dry.stdout.splitlines() if line.startswith("Running stage")}
        assert {name for name in stages if name.startswith(f"{lane}_")} <= ran, (lane, ran)
