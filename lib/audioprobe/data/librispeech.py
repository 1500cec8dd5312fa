"""LibriSpeech layout: `<subset>/<spk>/<chap>/<spk>-<chap>-<utt>.flac` + `.trans.txt`, SPEAKERS.TXT."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioprobe.audio.io import read_audio
from audioprobe.data.layout import DataProblems, Problem, is_audio_name

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


def _read_transcripts(trans_file: Path) -> dict[str, str]:
    trans = {}
    for line in trans_file.read_text(errors="replace").splitlines():
        if line.strip():
            uid, _, text = line.partition(" ")
            trans[uid] = text.strip()
    return trans


def scan(root: str | Path, subset: str | list[str] | None = None) -> tuple[list[Utterance], list[Problem]]:
    """Return (utterances sorted by subset and id, every layout problem), never stopping early.

    Problems: a missing subset, a non-numeric speaker or chapter folder, a file whose name
    does not match `<spk>-<chap>-<utt>.flac` of its folders (an upper-case `.FLAC`, a
    `.wav`), audio outside a chapter folder, an empty result.
    """
    root = Path(root)
    if not root.is_dir():
        return [], [Problem(str(root), "not a folder", "point the path at the LibriSpeech folder holding "
                                                        "the subset folders (e.g. train-clean-100/)")]
    present = subsets(root)
    wanted = present if subset in (None, "all") else [subset] if isinstance(subset, str) else list(subset)
    problems = [Problem(str(root / s), f"LibriSpeech subset {s} not found (present: {', '.join(present) or 'none'})",
                        "extract that subset there or change data.librispeech.subset")
                for s in wanted if s not in present]
    out: list[Utterance] = []
    for sub in (s for s in wanted if s in present):
        for spk_dir in sorted((root / sub).iterdir()):
            if spk_dir.name.startswith("."):
                continue
            if not spk_dir.is_dir():
                if is_audio_name(spk_dir.name):
                    problems.append(Problem(str(spk_dir), "audio file outside <spk>/<chap>/",
                                            "move it into its speaker/chapter folder or remove it"))
                continue
            if not spk_dir.name.isdigit():
                problems.append(Problem(str(spk_dir), "speaker folder name is not a number",
                                        "rename it to the numeric LibriSpeech speaker id or remove it"))
                continue
            for chap_dir in sorted(spk_dir.iterdir()):
                if chap_dir.name.startswith("."):
                    continue
                if not chap_dir.is_dir():
                    if is_audio_name(chap_dir.name):
                        problems.append(Problem(str(chap_dir), "audio file outside a chapter folder",
                                                "move it into <spk>/<chap>/ or remove it"))
                    continue
                if not chap_dir.name.isdigit():
                    problems.append(Problem(str(chap_dir), "chapter folder name is not a number",
                                            "rename it to the numeric chapter id or remove it"))
                    continue
                out.extend(_scan_chapter(sub, spk_dir.name, chap_dir, problems))
    if not out and not problems:
        problems.append(Problem(str(root), f"no <subset>/<spk>/<chap>/*.flac utterances in {wanted}",
                                "point the path at the LibriSpeech folder holding the subset folders"))
    return sorted(out, key=lambda u: (u.subset, u.utt_id)), problems


def _scan_chapter(sub: str, spk: str, chap_dir: Path, problems: list[Problem]) -> list[Utterance]:
    chap = chap_dir.name
    trans_file = chap_dir / f"{spk}-{chap}.trans.txt"
    trans = _read_transcripts(trans_file) if trans_file.is_file() else {}
    out = []
    for f in sorted(chap_dir.iterdir()):
        if f.name.startswith(".") or f == trans_file:
            continue
        m = _NAME.match(f.name)
        if m and m["spk"] == spk and m["chap"] == chap and f.is_file():
            out.append(Utterance(f.stem, spk, chap, sub, f"{sub}/{spk}/{chap}/{f.name}", trans.get(f.stem)))
        elif f.is_dir() or is_audio_name(f.name) or f.name.endswith(".txt"):
            what = ("upper-case suffix; LibriSpeech files end in .flac" if f.suffix.lower() == ".flac" and f.suffix != ".flac"
                    else f"name does not match {spk}-{chap}-<utt>.flac of its folders")
            problems.append(Problem(str(f), what, "rename it to <spk>-<chap>-<utt>.flac or remove it"))
    return out


def list_utterances(root: str | Path, subset: str | list[str] | None = None) -> list[Utterance]:
    """Return utterances sorted by id, of one subset, a list of them, or all (None / "all").

    Raises DataProblems listing every layout problem at once.
    """
    utts, problems = scan(root, subset)
    if problems:
        raise DataProblems("librispeech", problems)
    return utts


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
    """Every utterance file of every subset; raises DataProblems."""
    root = Path(root)
    return [root / u.relpath for u in list_utterances(root)]
