"""Download-time checks: every layout and audio problem of a dataset copy is reported at once.

Each test plants known defects in a tiny copy (real Speech Commands / LibriSpeech clips
from ../shared/fixtures, or synthetic audio) and asserts that every one is named, with
its file, in one report; that the download stage exits 1 with a summary line and one
line per problem and leaves nothing behind; and that loaders meeting bad audio anyway
raise a one-line DataError.
"""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from audioprobe.audio.io import AudioError, write_audio
from audioprobe.data import librispeech, speech_commands
from audioprobe.data.checks import RULES, check_dataset
from audioprobe.data.layout import DataProblems
from audioprobe.data.sources import manifest_lines
from audioprobe.data.params import Esc50, SpeechCommands
from audioprobe.data.sources import materialise
from audioprobe.runtime.errors import DataError, ParamsError
from audioprobe.runtime.params import validate_group
from audioprobe.runtime.provenance import sha256_file
from corpora import SR, esc_archive, noise, tiny_librispeech, tiny_speech_commands

REPO = Path(__file__).resolve().parents[3]


def _params_file(tmp_path: Path, dataset: str, **override) -> Path:
    cfg = yaml.safe_load((REPO / "params.yaml").read_text())
    cfg["data"][dataset].update(override)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _download(dataset: str, pfile: Path, out: Path, cwd: Path = REPO, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stages.data_download", "--dataset", dataset, "--params", str(pfile), "--out", str(out)],
        cwd=cwd, capture_output=True, text=True, timeout=300, **kw)


def plant_speech_commands_defects(root: Path) -> dict[str, str]:
    """Plant one of every defect kind; return {path: text its problem line must contain}."""
    yes = root / "yes"
    defects = {}
    f = yes / "aaaa0001_nohash_0.wav"
    write_audio(f, noise(8000), 8000)
    defects[str(f)] = "sample rate 8000 Hz"
    f = yes / "aaaa0002_nohash_0.wav"
    write_audio(f, noise(44100), 44100)
    defects[str(f)] = "sample rate 44100 Hz"
    f = yes / "aaaa0003_nohash_0.WAV"
    write_audio(f, noise(SR), SR)
    defects[str(f)] = "upper-case suffix .WAV"
    f = yes / "aaaa0004_nohash_0.wav"
    write_audio(f, noise(30 * SR), SR)
    defects[str(f)] = "30.000 s long, but a keyword clip is at most 1 s"
    f = yes / "aaaa0005_nohash_0.wav"
    sf.write(str(f), np.zeros(SR, np.float32), SR, subtype="PCM_16")
    defects[str(f)] = "every sample is zero"
    f = yes / "aaaa0006_nohash_0.wav"
    sf.write(str(f), np.zeros(0, np.float32), SR, subtype="PCM_16")
    defects[str(f)] = "empty audio"
    f = yes / "aaaa0007_nohash_0.wav"
    write_audio(f, noise(SR), SR)
    f.write_bytes(f.read_bytes()[:-500])
    defects[str(f)] = "truncated"
    f = yes / "aaaa0008_nohash_0.wav"
    sf.write(str(f), noise(2 * 8000).reshape(8000, 2), SR)
    defects[str(f)] = "2 channels"
    f = yes / "aaaa0009_nohash_0.wav"
    x = noise(SR)
    x[100] = np.nan
    sf.write(str(f), x, SR, subtype="FLOAT")
    defects[str(f)] = "NaN or inf"
    f = yes / "aaaa000a_nohash_0.wav"
    f.write_text("not audio at all\n" * 40)
    defects[str(f)] = "not a readable audio file"
    f = yes / "clip one.wav"
    write_audio(f, noise(SR), SR)
    defects[str(f)] = "name is not <speaker>_nohash_<n>.wav"
    f = root / "yess"
    f.mkdir()
    write_audio(f / "aaaa000b_nohash_0.wav", noise(SR), SR)
    defects[str(f)] = "not one of the 35 Speech Commands v2 words"
    return defects


# ------------------------------------------------------------------ the checker
def test_speech_commands_every_problem_reported_once(fixtures_dir, tmp_path):
    root = tiny_speech_commands(fixtures_dir, tmp_path / "sc")
    assert check_dataset("speech_commands", root, progress=False) == (7, [])  # 6 real clips + 1 noise
    defects = plant_speech_commands_defects(root)
    n_files, problems = check_dataset("speech_commands", root, progress=False)
    lines = [p.line() for p in problems]
    for path, text in defects.items():
        hits = [ln for ln in lines if ln.startswith(f"{path}: ") and text in ln]
        assert len(hits) == 1, (path, text, lines)
    assert len(problems) == len(defects)  # nothing else (the real clips are fine)
    assert all(";" in ln and "\n" not in ln for ln in lines)  # what is wrong; what to do


def test_librispeech_layout_problems_do_not_stop_the_audio_check(fixtures_dir, tmp_path):
    root = tiny_librispeech(fixtures_dir, tmp_path / "LibriSpeech")
    chap = next((root / "test-other").glob("*/*"))
    spk = chap.parent.name
    wrong_rate = chap / f"{spk}-{chap.name}-9990.flac"
    write_audio(wrong_rate, noise(3 * 8000), 8000)
    upper = chap / f"{spk}-{chap.name}-9991.FLAC"
    write_audio(upper, noise(SR), SR)
    misnamed = chap / "9999-1-0000.flac"
    write_audio(misnamed, noise(SR), SR)
    bad_speaker = root / "test-other" / "speaker_x" / "1"
    bad_speaker.mkdir(parents=True)
    write_audio(bad_speaker / "x-1-0000.flac", noise(SR), SR)
    too_long = chap / f"{spk}-{chap.name}-9992.flac"
    write_audio(too_long, noise(36 * SR), SR)
    _, problems = check_dataset("librispeech", root, progress=False)
    got = {(p.path, p.kind) for p in problems}
    assert got == {(str(wrong_rate), "sample rate"), (str(upper), "layout"), (str(misnamed), "layout"),
                   (str(bad_speaker.parent), "layout"), (str(too_long), "duration")}
    # the loaders refuse the same copy with every layout problem in one DataError
    with pytest.raises(DataProblems) as info:
        librispeech.list_utterances(root)
    assert len(info.value.problems) == 3 and str(bad_speaker.parent) in str(info.value)


def test_esc50_rules_five_seconds_and_one_rate(tmp_path):
    root = tmp_path / "ESC-50"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    names = ["1-100-A-0.wav", "2-200-A-0.wav", "3-300-A-1.wav", "4-400-A-1.wav"]
    for i, n in enumerate(names):
        write_audio(root / "audio" / n, noise(5 * SR, i), SR)
    write_audio(root / "audio" / names[2], noise(5 * 44100), 44100)  # a rate the copy does not share
    write_audio(root / "audio" / names[3], noise(4 * SR), SR)  # 4 s
    write_audio(root / "audio" / "5-500-A-2.wav", noise(5 * SR), SR)  # no meta row
    rows = ["filename,fold,target,category,esc10,src_file,take"] + [f"{n},{n[0]},{n[-5]},c,True,1,A" for n in names]
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    _, problems = check_dataset("esc50", root, progress=False)
    lines = sorted(p.line() for p in problems)
    assert len(lines) == 3, lines
    assert any(names[2] in ln and "most of this copy is 16000 Hz" in ln for ln in lines)
    assert any(names[3] in ln and "4.000 s long, but a clip is 5 s" in ln for ln in lines)
    assert any("5-500-A-2.wav" in ln and "not listed in meta/esc50.csv" in ln for ln in lines)


def test_every_dataset_states_its_rules():
    assert set(RULES) == {"speech_commands", "librispeech", "esc50", "musan", "reasonaqa"}
    assert RULES["speech_commands"]["clip"].max_seconds == 1.0
    assert RULES["speech_commands"]["clip"].sample_rates == (16000,)
    assert RULES["librispeech"]["utterance"].sample_rates == (16000,)
    assert RULES["esc50"]["clip"].exact_seconds == 5.0


# ------------------------------------------------------------------ the sources
def test_path_source_raises_every_problem_and_the_stage_prints_one_per_line(fixtures_dir, tmp_path):
    root = tiny_speech_commands(fixtures_dir, tmp_path / "sc")
    defects = plant_speech_commands_defects(root)
    with pytest.raises(DataProblems) as info:
        materialise("speech_commands", SpeechCommands(source="path", path=str(root)), _mk(tmp_path / "o"), False)
    assert len(info.value.problems) == len(defects)

    pfile = _params_file(tmp_path, "speech_commands", source="path", path=str(root))
    out = tmp_path / "data" / "raw" / "speech_commands"
    proc = _download("speech_commands", pfile, out)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and f"{len(defects)} problem(s)" in errors[0]
    for path, text in defects.items():
        assert sum(ln.strip().startswith(f"{path}: ") and text in ln for ln in lines) == 1, (path, proc.stderr)
    assert not out.exists() and not list(out.parent.glob(".*")) if out.parent.exists() else True


def test_embedded_output_is_checked_too(tmp_path, monkeypatch):
    from audioprobe.data.synth import esc50 as s_esc50

    real = s_esc50.write

    def write_with_a_silent_clip(root, cfg):
        real(root, cfg)
        victim = sorted((root / "audio").glob("*.wav"))[0]
        sf.write(str(victim), np.zeros(5 * SR, np.float32), SR, subtype="PCM_16")

    monkeypatch.setattr(s_esc50, "write", write_with_a_silent_clip)
    from audioprobe.data.params import Esc50Embedded

    with pytest.raises(DataProblems, match=r"\(embedded corpus\) ESC-50/audio/.*every sample is zero"):
        materialise("esc50", Esc50(embedded=Esc50Embedded(classes=2, clips_per_fold=1)), _mk(tmp_path / "o"), False)


def test_url_archive_is_checked(tmp_path):
    arc = esc_archive(tmp_path, bad=True)
    with pytest.raises(DataProblems, match=r"\(archive\) ESC-50-master/audio/1-100-A-0.wav: sample rate 8000 Hz"):
        materialise("esc50", Esc50(source="url", url=arc.as_uri(), sha256=sha256_file(arc)), _mk(tmp_path / "o"), False)


def test_url_without_pinned_sha256_is_refused_unless_allowed(tmp_path):
    arc = esc_archive(tmp_path)
    out = _mk(tmp_path / "o")
    with pytest.raises(DataError, match=r"data\.esc50\.sha256 is empty.*allow_unverified: true"):
        materialise("esc50", Esc50(source="url", url=arc.as_uri()), out, False)
    assert not any(out.iterdir())  # refused before downloading anything
    rec = materialise("esc50", Esc50(source="url", url=arc.as_uri(), allow_unverified=True), _mk(tmp_path / "o2"), False)
    assert rec["verified"] is False and rec["sha256"] == sha256_file(arc)
    rec = materialise("esc50", Esc50(source="url", url=arc.as_uri(), sha256=sha256_file(arc)), _mk(tmp_path / "o3"), False)
    assert rec["verified"] is True


def test_url_over_a_local_http_server(tmp_path):
    arc = esc_archive(tmp_path)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{arc.name}"
        rec = materialise("esc50", Esc50(source="url", url=url, sha256=sha256_file(arc)), _mk(tmp_path / "o"), False)
        assert rec["files"] == 2 and rec["url"] == url
    finally:
        server.shutdown()


def test_params_https_sha256_and_path_rules():
    def data(**kw):
        return {"data": {"speech_commands": kw}}

    with pytest.raises(ParamsError, match=r"data\.speech_commands\.url: .*not https"):
        validate_group(data(url="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"),
                       "data.speech_commands")
    with pytest.raises(ParamsError, match=r"data\.speech_commands\.sha256: .*64 hex"):
        validate_group(data(sha256="abc"), "data.speech_commands")
    with pytest.raises(ParamsError, match=r"data\.speech_commands\.path: .*DVC dependency"):
        validate_group(data(path=""), "data.speech_commands")
    cfg = validate_group(data(), "data.speech_commands")
    assert cfg.allow_unverified is False and cfg.path == "data/local/speech_commands"
    repo = yaml.safe_load((REPO / "params.yaml").read_text())["data"]
    for name, d in repo.items():
        assert d["url"].startswith("https://"), name
        assert d["path"] == f"data/local/{name}" and (REPO / d["path"]).is_dir(), name  # the placeholder dep
        assert d["allow_unverified"] is False, name
    assert repo["speech_commands"]["sha256"] == "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"


# ------------------------------------------------------------------ loaders downstream
def test_loaders_raise_one_line_data_errors(fixtures_dir, tmp_path):
    root = tiny_speech_commands(fixtures_dir, tmp_path / "sc")
    assert issubclass(AudioError, DataError)
    write_audio(root / "yes" / "aaaa0001_nohash_0.wav", noise(8000), 8000)
    write_audio(root / "yes" / "aaaa0002_nohash_0.wav", noise(30 * SR), SR)
    with pytest.raises(DataError, match=r"aaaa0001_nohash_0.wav: sample rate 8000 Hz, expected 16000"):
        speech_commands.load_clip(root, "yes/aaaa0001_nohash_0.wav")
    with pytest.raises(DataError, match=r"aaaa0002_nohash_0.wav: 30.000 s long.*at most 1 s") as info:
        speech_commands.load_clip(root, "yes/aaaa0002_nohash_0.wav")  # never silently cut to 1 s
    assert "\n" not in str(info.value)
    (root / "yes" / "x.WAV").write_bytes(b"")
    with pytest.raises(DataProblems, match=r"x\.WAV: upper-case suffix"):
        speech_commands.list_clips(root)

    libri = tiny_librispeech(fixtures_dir, tmp_path / "LibriSpeech", n_speakers=1)
    utt = librispeech.list_utterances(libri)[0]
    write_audio(libri / utt.relpath, noise(SR), 8000)
    with pytest.raises(DataError, match=rf"{utt.utt_id}.flac: sample rate 8000 Hz, expected 16000"):
        librispeech.load_utterance(libri, utt)


def test_kws_features_stage_meeting_bad_audio_prints_one_line(fixtures_dir, tmp_path):
    root = tiny_speech_commands(fixtures_dir, tmp_path / "sc")
    bad = root / "yes" / "aaaa0001_nohash_0.wav"
    write_audio(bad, noise(8000), 8000)
    raw = tmp_path / "raw"
    raw.mkdir()  # what data_download@speech_commands would write for this copy had it not refused the file
    (raw / "source.json").write_text('{"source": "path", "dataset": "speech_commands", "sha256": "x"}\n')
    (raw / "manifest.tsv").write_text("".join(ln + "\n" for ln in manifest_lines(root)))
    pfile = _params_file(tmp_path, "speech_commands", source="path", path=str(root))
    proc = subprocess.run([sys.executable, "-m", "stages.kws_features", "--raw", str(raw), "--out",
                           str(tmp_path / "feat"), "--params", str(pfile)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(err) == 1 and str(bad) in err[0] and "8000 Hz" in err[0]
    assert not (tmp_path / "feat").exists()


# ------------------------------------------------------------------ temp folders
def test_stale_temp_folder_is_removed_by_the_next_run(fixtures_dir, tmp_path):
    root = tiny_speech_commands(fixtures_dir, tmp_path / "sc")
    pfile = _params_file(tmp_path, "speech_commands", source="path", path=str(root))
    out = tmp_path / "data" / "raw" / "speech_commands"
    stale = out.parent / ".speech_commands.tmp"  # what a kill -9 of a previous run leaves
    (stale / "junk").mkdir(parents=True)
    (stale / "junk" / "half.wav").write_bytes(b"RIFF")
    proc = _download("speech_commands", pfile, out)
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists() and sorted(p.name for p in out.parent.iterdir()) == ["speech_commands"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.tsv", "source.json"]


def test_sigterm_leaves_no_temp_folder(tmp_path):
    pfile = _params_file(tmp_path, "librispeech")  # embedded: eSpeak synthesis takes a few seconds
    out = tmp_path / "data" / "raw" / "librispeech"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.data_download", "--dataset", "librispeech", "--params", str(pfile), "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tmp = out.parent / ".librispeech.tmp"
    deadline = time.monotonic() + 120
    while not tmp.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert tmp.exists(), "the stage never started writing"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    time.sleep(0.5)  # forked synth workers die with their parent
    assert not tmp.exists() and not out.exists()


def _mk(p: Path) -> Path:
    p.mkdir(parents=True)
    return p


def test_embedded_download_with_forked_synth_workers_exits(tmp_path):
    """The stage's SIGTERM handler must not outlive a fork: Pool.terminate() SIGTERMs its eSpeak workers."""
    pfile = tmp_path / "params.yaml"
    cfg = yaml.safe_load((REPO / "params.yaml").read_text())
    cfg["data"]["speech_commands"]["embedded"].update(speakers=3, words=3, noise_seconds=1.0)
    pfile.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "raw" / "speech_commands"
    proc = _download("speech_commands", pfile, out)  # hung until the timeout with the handler inherited
    assert proc.returncode == 0, proc.stderr
    assert "15 audio files from embedded" in proc.stdout and "KeyboardInterrupt" not in proc.stderr
