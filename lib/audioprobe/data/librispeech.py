"""LibriSpeech layout: `<subset>/<spk>/<chap>/<spk>-<chap>-<utt>.flac` + `.trans.txt`, SPEAKERS.TXT."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.audio.io import read_audio
from audioprobe.errors import DataError

SAMPLE_RATE = 16000
_NAME = re.compile(r"^(?P<spk>\d+)-(?P<chap>\d+)-(?P<utt>\d+)\.flac$")


@dataclass(frozen=True)
class Utterance:
    utt_id: str  # "<spk>-<chap>-<utt>"
    speaker: str
    chapter: str
    subset: str
    relpath: str  # relative to the LibriSpeech root
    transcript: str | None  # None when the chapter has no .trans.txt


def subsets(root: str | Path) -> list[str]:
    """Subset folders present under root (e.g. train-clean-100, test-other)."""
    root = Path(root)
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def list_utterances(root: str | Path, subset: str | list[str] | None = None) -> list[Utterance]:
    """Return utterances sorted by id, of one subset, a list of them, or all (None / "all")."""
    root = Path(root)
    present = subsets(root)
    wanted = present if subset in (None, "all") else [subset] if isinstance(subset, str) else list(subset)
    missing = [s for s in wanted if s not in present]
    if missing:
        raise DataError(f"{root}: LibriSpeech subset(s) {missing} not found; present: {present}")
    out = []
    for sub in wanted:
        for chap_dir in sorted((root / sub).glob("*/*")):
            if not chap_dir.is_dir():
                continue
            spk, chap = chap_dir.parent.name, chap_dir.name
            trans_file = chap_dir / f"{spk}-{chap}.trans.txt"
            trans = {}
            if trans_file.is_file():
                for line in trans_file.read_text().splitlines():
                    if line.strip():
                        uid, _, text = line.partition(" ")
                        trans[uid] = text.strip()
            for f in sorted(chap_dir.glob("*.flac")):
                m = _NAME.match(f.name)
                if not m or m["spk"] != spk or m["chap"] != chap:
                    raise DataError(f"{f}: name does not match <spk>-<chap>-<utt>.flac of its folders")
                uid = f.stem
                out.append(Utterance(uid, spk, chap, sub, f"{sub}/{spk}/{chap}/{f.name}", trans.get(uid)))
    if not out:
        raise DataError(f"{root}: no <subset>/<spk>/<chap>/*.flac utterances in {wanted}")
    return sorted(out, key=lambda u: (u.subset, u.utt_id))


def load_utterance(root: str | Path, utt: Utterance) -> tuple[np.ndarray, int]:
    """Return (float32 wave, 16000)."""
    return read_audio(Path(root) / utt.relpath, expected_sr=SAMPLE_RATE)


def read_speakers(root: str | Path) -> dict[str, dict[str, str]]:
    """Parse SPEAKERS.TXT: id -> {sex, subset, minutes, name}; {} when absent."""
    f = Path(root) / "SPEAKERS.TXT"
    if not f.is_file():
        return {}
    out = {}
    for line in f.read_text(errors="replace").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        parts = [p.strip() for p in line.split("|", 4)]
        if len(parts) == 5:
            out[parts[0]] = dict(sex=parts[1], subset=parts[2], minutes=parts[3], name=parts[4])
    return out


def audio_files(root: str | Path) -> list[Path]:
    root = Path(root)
    return [root / u.relpath for u in list_utterances(root)]
