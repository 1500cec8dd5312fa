"""Materialise a dataset from its configured source into `data/raw/<dataset>`.

- embedded: the synthesizer writes the official layout into `<out>/<layout root>`.
- path: the user's local copy is read in place; `<out>/manifest.tsv` lists every file
  (relative path, size, sha256) so a changed file changes this stage's output and
  reruns what depends on it, without copying gigabytes into the DVC cache. (dvc.yaml
  lists the copy itself as a dependency, so `dvc status` notices an edit.) The copy's
  location is not recorded: readers take it from `data.<dataset>.path`.
- url: the official archive is downloaded over https (progress bar), checked against
  the pinned `sha256` (refused without one unless `allow_unverified: true`), and
  extracted into `<out>`.
Then every file is checked (`checks.check_dataset`: layout and audio, all problems at
once) and `<out>/source.json` is written (read by `layout.dataset_root`). Its hashes cover
every file the dataset's readers see (embedded: `sha256` of the written tree; path: of
the manifest; url: `content_sha256` of the extracted tree), so downstream stages list
`data/raw/<dataset>/source.json` as their dependency, not the folder: DVC would otherwise
re-check every file of the folder for every such stage on every `dvc repro`.
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

from audioprobe.data import esc50, librispeech, musan, reasonaqa, speech_commands
from audioprobe.data.checks import check_dataset
from audioprobe.data.layout import MANIFEST_FILE, SOURCE_FILE, DataProblems, Problem
from audioprobe.runtime.errors import DataError
from audioprobe.runtime.provenance import sha256_file, sha256_tree

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
    lines = manifest_lines(root)
    (out / MANIFEST_FILE).write_text("".join(ln + "\n" for ln in lines))
    digest = hashlib.sha256("".join(ln + "\n" for ln in lines).encode()).hexdigest()
    # Content decides, not where the copy lives: no path is recorded, so the same copy at
    # another place (or on another machine) gives the same bytes and reruns nothing
    # downstream. Readers find the copy through data.<name>.path (layout.dataset_root).
    return {"source": "path", "dataset": name, "sha256": digest}


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
    if not cfg.sha256 and not cfg.allow_unverified:
        raise DataError(f"params.yaml: data.{name}.sha256 is empty, so the archive at {cfg.url} cannot be "
                        f"verified; pin its published sha256, or set data.{name}.allow_unverified: true")
    archive = out / ".download" / Path(cfg.url).name
    archive.parent.mkdir(parents=True, exist_ok=True)
    try:
        download(cfg.url, archive)
    except OSError as exc:
        raise DataError(f"data.{name}.url: download failed ({exc}); check the network or use source: path") from None
    digest = sha256_file(archive)
    if not cfg.sha256:
        print(f"warning: data.{name}: archive NOT verified (allow_unverified: true); its sha256 is {digest}: "
              f"pin it as data.{name}.sha256", file=sys.stderr)
    elif digest != cfg.sha256.lower():
        raise DataError(f"data.{name}.url: sha256 {digest} does not match data.{name}.sha256 {cfg.sha256}; "
                        f"the archive changed or the download is corrupt: download again or check the pin")
    extract(archive, out)
    shutil.rmtree(archive.parent)
    # `sha256` pins the archive; `content_sha256` covers what was extracted from it, so
    # source.json (the file downstream stages depend on) changes whenever any file does.
    return {"source": "url", "root": ARCHIVE_ROOT[name] or ".", "sha256": digest, "url": cfg.url,
            "verified": bool(cfg.sha256), "content_sha256": sha256_tree(out)}


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
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the stdlib's own checks
                    t.extractall(out, filter="data")
                else:  # 3.11.0-3.11.3 (e.g. Debian 12's 3.11.2): the same refusals by hand
                    t.extractall(out, members=_plain_members(t, out_r, archive))
        except tarfile.TarError as exc:  # not a tar, or a member escapes / is a device
            raise DataError(f"{archive}: cannot extract ({exc})") from None


def _plain_members(t: tarfile.TarFile, out_r: Path, archive: Path) -> list[tarfile.TarInfo]:
    """The members of `t` if every one is a file or folder inside `out_r` (links and devices refused)."""
    members = t.getmembers()
    for m in members:
        if not (m.isfile() or m.isdir()):
            raise DataError(f"{archive}: member {m.name} is a link or special file; refusing to extract")
        if m.name.startswith("/") or not (out_r / m.name).resolve().is_relative_to(out_r):
            raise DataError(f"{archive}: member {m.name} escapes the output folder")
    return members


def materialise(name: str, cfg, out: Path, progress: bool = True) -> dict:
    """Fill `out` (an empty temp folder) from the configured source, then check every file.

    Raises DataProblems listing every layout and audio problem at once; the caller
    (atomic_dir) then removes `out`, so nothing partial is left.
    """
    rec = {"embedded": write_embedded, "path": write_path, "url": write_url}[cfg.source](name, cfg, out)
    # path: check the copy where the user named it (their paths in every message)
    root = Path(cfg.path).expanduser() if cfg.source == "path" else out / rec["root"]
    n_files, problems = check_dataset(name, root, getattr(cfg, "subset", None), progress=progress)
    if problems:
        raise DataProblems(name, [_shown(p, out, cfg.source) for p in problems], n_files)
    rec["files"] = n_files
    (out / SOURCE_FILE).write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    return rec


def _shown(p: Problem, out: Path, source: str) -> Problem:
    """Name files of an embedded corpus or an extracted archive by their place in it, not the temp folder."""
    if source == "path" or not p.path.startswith(str(out)):
        return p
    label = "archive" if source == "url" else "embedded corpus"
    return Problem(f"({label}) {p.path[len(str(out)):].lstrip('/')}", p.what, p.fix, p.kind)
