"""End-to-end with the real dvc: a `path` source notices a deleted, changed or added file.

dvc.yaml lists `${item.path}` (the local copy) as a dependency of data_download@<dataset>, so
`dvc status` reports an edit of the copy without anyone forcing a rerun.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import soundfile as sf
import yaml

from corpora import tiny_speech_commands

pytestmark = pytest.mark.e2e
STAGE = "data_download@speech_commands"


def _status(repo) -> str:
    return repo.run("dvc", "status", STAGE).stdout


def test_path_source_edits_mark_download_changed(fixtures_dir, temp_repo, tmp_path):
    copy = tiny_speech_commands(fixtures_dir, tmp_path / "my_speech_commands", per_word=3)
    temp_repo.set_params({"data": {"speech_commands": {"source": "path", "path": str(copy)}}})
    temp_repo.run("dvc", "repro", "--single-item", STAGE)
    manifest = temp_repo.root / "data/raw/speech_commands/manifest.tsv"
    first = manifest.read_text()
    assert "up to date" in _status(temp_repo)
    lock = yaml.safe_load((temp_repo.root / "dvc.lock").read_text())
    deps = {d["path"]: d for d in lock["stages"][STAGE]["deps"]}
    assert deps[str(copy)]["nfiles"] == 9  # the copy itself is a recorded dependency (6 clips, 2 lists, noise)

    # delete one file
    victim = sorted((copy / "yes").glob("*.wav"))[0]
    victim.unlink()
    out = _status(temp_repo)
    assert STAGE in out and "modified" in out and str(copy) in out, out
    temp_repo.run("dvc", "repro", "--single-item", STAGE)
    assert f"yes/{victim.name}" in first and f"yes/{victim.name}" not in manifest.read_text()
    assert "up to date" in _status(temp_repo)

    # change one file (still valid audio)
    changed = sorted((copy / "no").glob("*.wav"))[0]
    wave, sr = sf.read(str(changed), dtype="float32")
    sf.write(str(changed), np.clip(wave * 0.5, -1, 1), sr, subtype="PCM_16")
    assert STAGE in _status(temp_repo)
    temp_repo.run("dvc", "repro", "--single-item", STAGE)
    assert "up to date" in _status(temp_repo)

    # add one file
    shutil.copy2(sorted((copy / "no").glob("*.wav"))[1], copy / "no" / "abcdef01_nohash_0.wav")
    assert STAGE in _status(temp_repo)

    # a bad file: the stage fails with every problem listed and leaves no output or temp folder
    sf.write(str(copy / "no" / "abcdef02_nohash_0.wav"), np.zeros(8000, np.float32), 8000, subtype="PCM_16")
    proc = temp_repo.run("dvc", "repro", "--single-item", STAGE, check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "error: data.speech_commands: 2 problem(s)" in text and "Traceback" not in text
    assert "abcdef02_nohash_0.wav: sample rate 8000 Hz" in text and "every sample is zero" in text
    raw = temp_repo.root / "data/raw"
    assert not (raw / "speech_commands").exists() and not (raw / ".speech_commands.tmp").exists()


def test_embedded_default_depends_on_its_placeholder_only(temp_repo):
    """The embedded default's dependency is the committed placeholder folder: cheap to stat."""
    t0 = time.monotonic()
    out = temp_repo.run("dvc", "status", "data_download@musan").stdout
    elapsed = time.monotonic() - t0
    assert "data/local/musan" in out  # listed as a (new) dependency before the first run
    print(f"dvc status data_download@musan (never run): {elapsed:.2f} s (shared CPU: inflated)")
    assert sorted(p.name for p in (temp_repo.root / "data/local/musan").iterdir()) == ["README.md"]
