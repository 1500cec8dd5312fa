"""The `audioprobe` console command: groups, params check, data check."""

from __future__ import annotations

from typer.testing import CliRunner

from audioprobe.cli import app

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
    assert ok.exit_code == 0 and "0 bad" in ok.output
    wrong = runner.invoke(app, ["data", "check", "esc50", str(fixtures_dir / "LibriSpeech")])
    assert wrong.exit_code == 1 and "meta/esc50.csv" in wrong.output


def test_data_synth_writes_official_layout(tmp_path):
    res = runner.invoke(app, ["data", "synth", "esc50", "--out", str(tmp_path / "esc")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "esc/ESC-50/meta/esc50.csv").is_file()
    assert (tmp_path / "esc/source.json").is_file()
