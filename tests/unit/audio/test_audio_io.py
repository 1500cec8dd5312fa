"""Audio file IO: round trips, and every kind of bad file raises one AudioError naming the file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from audioprobe.audio.io import AudioError, check_audio_files, read_audio, write_audio

REPO = Path(__file__).resolve().parents[3]
SR = 16000


def _noise(n: int = SR, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(n)).clip(-1, 1).astype(np.float32)


def _bad(path: Path, **kw) -> str:
    with pytest.raises(AudioError) as info:
        read_audio(path, **kw)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_round_trip_within_pcm16_quantisation(tmp_path, suffix):
    x = _noise()
    f = tmp_path / f"a{suffix}"
    write_audio(f, x, SR)
    y, sr = read_audio(f, expected_sr=SR)
    assert sr == SR and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) <= 2**-15  # one PCM16 step
    assert np.max(np.abs(y - x)) > 0  # really went through PCM16
    assert sf.info(str(f)).subtype == "PCM_16"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic temp file is gone


def test_write_clips_full_scale_and_refuses_bad_arrays(tmp_path):
    f = tmp_path / "loud.wav"
    write_audio(f, np.array([2.0, -2.0, 0.5], np.float32), SR)
    y, _ = read_audio(f)
    assert y[0] == pytest.approx(1 - 2**-15) and y[1] == -1.0 and y[2] == 0.5
    for bad in (np.zeros((10, 2)), np.zeros(0), np.array([0.0, np.nan])):
        with pytest.raises(AudioError):
            write_audio(tmp_path / "x.wav", bad, SR)
    with pytest.raises(AudioError, match="suffix"):
        write_audio(tmp_path / "x.mp3", _noise(10), SR)


def test_empty_file(tmp_path):
    f = tmp_path / "empty.wav"
    sf.write(str(f), np.zeros(0, np.float32), SR, subtype="PCM_16")
    assert "empty audio" in _bad(f)


@pytest.mark.parametrize("cut", [1, 501, 16000])
def test_truncated_wav(tmp_path, cut):
    good = tmp_path / "good.wav"
    write_audio(good, _noise(), SR)
    data = good.read_bytes()
    f = tmp_path / "cut.wav"
    f.write_bytes(data[: len(data) - cut])
    assert "truncated" in _bad(f)


def test_truncated_flac(tmp_path):
    good = tmp_path / "good.flac"
    write_audio(good, _noise(), SR)
    data = good.read_bytes()
    f = tmp_path / "cut.flac"
    f.write_bytes(data[: len(data) - 500])
    _bad(f)


def test_wrong_sample_rate_only_when_expected(tmp_path):
    f = tmp_path / "sr.wav"
    write_audio(f, _noise(), 22050)
    assert read_audio(f)[1] == 22050
    msg = _bad(f, expected_sr=SR)
    assert "22050" in msg and "16000" in msg


def test_stereo(tmp_path):
    f = tmp_path / "stereo.wav"
    sf.write(str(f), np.zeros((100, 2), np.float32), SR)
    assert "2 channels" in _bad(f)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, value):
    x = _noise(1000)
    x[500] = value
    f = tmp_path / "nan.wav"
    sf.write(str(f), x, SR, subtype="FLOAT")
    assert "NaN or inf" in _bad(f)


def test_non_audio_bytes(tmp_path):
    f = tmp_path / "junk.wav"
    f.write_bytes(b"this is a text file, not audio\n" * 50)
    assert "not a readable audio file" in _bad(f)
    g = tmp_path / "missing.wav"
    assert "not a readable" in _bad(g)


def test_check_audio_files_one_line_per_bad_file(tmp_path):
    good = tmp_path / "good.wav"
    write_audio(good, _noise(), SR)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"\0" * 200)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[:-100])
    other_sr = tmp_path / "sr.wav"
    write_audio(other_sr, _noise(), 8000)
    errs = check_audio_files([good, junk, cut, other_sr], expected_sr=SR)
    assert len(errs) == 3
    assert [str(junk) in errs[0], str(cut) in errs[1], str(other_sr) in errs[2]] == [True] * 3
    assert all("\n" not in e for e in errs)
    assert check_audio_files([good], expected_sr=SR) == []


def test_download_stage_reports_every_bad_file_and_leaves_nothing(tmp_path):
    """source: path over an ESC-50 layout with two bad files: one error naming both, no output."""
    root = tmp_path / "my_esc50"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    names = [f"{fold}-10000{fold}-A-{t}.wav" for fold in (1, 2) for t in (0, 1)]
    for i, n in enumerate(names):
        write_audio(root / "audio" / n, _noise(5 * SR, seed=i), SR)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    rows += [f"{n},{n[0]},{n[-5]},{'dog' if n[-5] == '0' else 'rooster'},True,10000{n[0]},A" for n in names]
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    bad1, bad2 = root / "audio" / names[1], root / "audio" / names[2]
    bad1.write_bytes(bad1.read_bytes()[:-300])  # truncated
    bad2.write_bytes(b"RIFF nonsense" * 20)  # not audio

    cfg = yaml.safe_load((REPO / "params.yaml").read_text())
    cfg["data"]["esc50"].update(source="path", path=str(root))
    pfile = tmp_path / "params.yaml"
    pfile.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "data" / "raw" / "esc50"
    proc = subprocess.run(
        [sys.executable, "-m", "stages.data_download", "--dataset", "esc50", "--params", str(pfile), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(err) == 1, proc.stderr  # one summary line, then one line per problem
    assert "2 problem(s) in 4 audio file(s) checked (2 unreadable)" in err[0]
    lines = proc.stderr.splitlines()
    assert any(ln.strip().startswith(f"{bad1}: truncated") for ln in lines)
    assert any(ln.strip().startswith(f"{bad2}: not a readable audio file") for ln in lines)
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not (out.parent / ".esc50.tmp").exists()

    # fixed files: the same command succeeds and writes the manifest
    for i, b in ((1, bad1), (2, bad2)):
        write_audio(b, _noise(5 * SR, seed=i), SR)
    proc = subprocess.run(
        [sys.executable, "-m", "stages.data_download", "--dataset", "esc50", "--params", str(pfile), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "manifest.tsv").is_file() and (out / "source.json").is_file()
    shutil.rmtree(out)
