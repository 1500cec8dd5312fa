"""Materialise a dataset from its configured source into `data/raw/<dataset>`.

- embedded: the synthesizer writes the official layout into `<out>/<layout root>`.
- path: the user's local copy is read in place; `<out>/manifest.tsv` lists every file
  (relative path, size, sha256) so a changed file changes this stage's output and
  reruns what depends on it, without copying gigabytes into the DVC cache.
- url: the official archive is downloaded (progress bar), checked against `sha256`,
  and extracted into `<out>`.
Every source writes `<out>/source.json` (read by `layout.dataset_root`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from audioprobe.audio.io import check_audio_files
from audioprobe.data import esc50, librispeech, musan, reasonaqa, speech_commands
from audioprobe.data.layout import SOURCE_FILE
from audioprobe.errors import DataError
from audioprobe.provenance import sha256_file, sha256_tree

LAYOUTS = {
    "speech_commands": speech_commands, "librispeech": librispeech, "esc50": esc50,
    "musan": musan, "reasonaqa": reasonaqa,
}
# Folder an official archive extracts to, relative to the output (None: extracts flat).
ARCHIVE_ROOT = {"speech_commands": None, "librispeech": "LibriSpeech", "esc50": "ESC-50-master",
                "musan": "musan", "reasonaqa": None}
EMBEDDED_ROOT = {"speech_commands": "speech_commands", "librispeech": "LibriSpeech",
                 "esc50": "ESC-50", "musan": "musan", "reasonaqa": "ReasonAQA"}


def write_embedded(name: str, cfg, out: Path) -> dict:
    """Synthesize dataset `name` into out/<root>; return the source record."""
    from audioprobe.data.synth import esc50 as s_esc50
    from audioprobe.data.synth import librispeech as s_libri
    from audioprobe.data.synth import musan as s_musan
    from audioprobe.data.synth import reasonaqa as s_raqa
    from audioprobe.data.synth import speech_commands as s_sc

    writer = {"speech_commands": s_sc, "librispeech": s_libri, "esc50": s_esc50,
              "musan": s_musan, "reasonaqa": s_raqa}[name]
    root = out / EMBEDDED_ROOT[name]
    writer.write(root, cfg.embedded)
    return {"source": "embedded", "root": EMBEDDED_ROOT[name], "sha256": sha256_tree(root),
            "embedded": cfg.embedded.model_dump()}


def manifest_lines(root: Path) -> list[str]:
    """'relpath<TAB>size<TAB>sha256' for every non-hidden file under root, sorted."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))
    return [f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\t{sha256_file(p)}"
            for p in tqdm(files, desc="hashing local copy", unit="file")]


def write_path(name: str, cfg, out: Path) -> dict:
    root = Path(cfg.path).expanduser()
    if not cfg.path or not root.is_dir():
        raise DataError(f"params.yaml: data.{name}.path {cfg.path!r} is not a folder; "
                        f"point it at a local copy in the official layout")
    root = root.resolve()
    lines = manifest_lines(root)
    (out / "manifest.tsv").write_text("".join(ln + "\n" for ln in lines))
    digest = hashlib.sha256("".join(ln + "\n" for ln in lines).encode()).hexdigest()
    return {"source": "path", "root": str(root), "sha256": digest}


def download(url: str, dest: Path) -> None:
    """Stream url to dest with a progress bar."""
    with urllib.request.urlopen(url) as resp, open(dest, "wb") as f:
        total = int(resp.headers.get("Content-Length") or 0)
        with tqdm(total=total or None, unit="B", unit_scale=True, desc=dest.name) as bar:
            while block := resp.read(1 << 20):
                f.write(block)
                bar.update(len(block))


def write_url(name: str, cfg, out: Path) -> dict:
    if not cfg.url:
        raise DataError(f"params.yaml: data.{name}.url is empty; set the official archive URL")
    archive = out / ".download" / Path(cfg.url).name
    archive.parent.mkdir(parents=True, exist_ok=True)
    try:
        download(cfg.url, archive)
    except OSError as exc:
        raise DataError(f"data.{name}.url: download failed ({exc}); check the network or use source: path") from None
    digest = sha256_file(archive)
    if not cfg.sha256:
        print(f"warning: data.{name}.sha256 is empty, so the archive was not verified; "
              f"its sha256 is {digest}: pin it in params.yaml", file=sys.stderr)
    elif digest != cfg.sha256.lower():
        raise DataError(f"data.{name}.url: sha256 {digest} does not match data.{name}.sha256 {cfg.sha256}")
    extract(archive, out)
    shutil.rmtree(archive.parent)
    return {"source": "url", "root": ARCHIVE_ROOT[name] or ".", "sha256": digest, "url": cfg.url}


def extract(archive: Path, out: Path) -> None:
    """Extract a .tar.gz or .zip refusing members that escape `out`."""
    out_r = out.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for m in z.namelist():
                if not (out / m).resolve().is_relative_to(out_r):
                    raise DataError(f"{archive}: member {m} escapes the output folder")
            z.extractall(out)
    else:
        try:
            with tarfile.open(archive) as t:
                t.extractall(out, filter="data")
        except tarfile.TarError as exc:  # not a tar, or a member escapes / is a device
            raise DataError(f"{archive}: cannot extract ({exc})") from None


def materialise(name: str, cfg, out: Path) -> dict:
    """Fill `out` (an empty temp folder) from the configured source, then check every file.

    Raises DataError listing every bad audio file at once.
    """
    rec = {"embedded": write_embedded, "path": write_path, "url": write_url}[cfg.source](name, cfg, out)
    root = Path(rec["root"]) if Path(rec["root"]).is_absolute() else out / rec["root"]
    layout = LAYOUTS[name]
    files = layout.audio_files(root)
    bad = check_audio_files(files)
    if bad:
        raise DataError(f"data.{name}: {len(bad)} bad audio file(s) of {len(files)}: " + "; ".join(bad))
    rec["files"] = len(files)
    (out / SOURCE_FILE).write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    return rec
