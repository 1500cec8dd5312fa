"""A no-op `dvc repro` stays cheap: no stage depends on a big folder, only on its digest.

DVC re-checks a folder dependency file by file (a stat and a state-db lookup each), for
every stage listing it, on every `dvc repro`: on HEAD before this rule the detect clips
(4,802 files x 7 consumers) and the raw datasets made 57k lookups and an 8 s no-op. Stages
now depend on `data/raw/<dataset>/source.json` and `<folder>/digest.json` instead, whose
hashes cover every file. The time itself is measured by `python -m audioprobe.bench.noop`,
never here (host-dependent).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audioprobe.data import sources
from audioprobe.data.params import Esc50
from audioprobe.data.sources import materialise
from audioprobe.runtime.digest import DIGEST_FILE, write_digest
from audioprobe.runtime.provenance import sha256_file

REPO = Path(__file__).resolve().parents[2]
# A folder dependency with more files than this must be replaced by its digest file.
MAX_DEP_FILES = 100


def _stage_deps() -> dict[str, list[str]]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, st in stages.items():
        st = st.get("do", st)
        out[name] = [d if isinstance(d, str) else next(iter(d)) for d in st.get("deps", [])]
    return out


def test_no_stage_depends_on_a_raw_dataset_folder():
    bad = [f"{name}: {d}" for name, deps in _stage_deps().items() for d in deps
           if re.fullmatch(r"data/raw/[^/]+/?", d)]
    assert not bad, ("list data/raw/<dataset>/source.json (its sha256 covers every file), "
                     f"not the folder: {bad}")


def test_no_locked_dependency_is_a_big_folder():
    """dvc.lock (the embedded default's run) records how many files each folder dep has."""
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    big = [f"{name}: {d['path']} ({d['nfiles']} files)" for name, st in lock.items()
           for d in st.get("deps", []) if d.get("nfiles", 0) > MAX_DEP_FILES]
    assert not big, ("a stage depends on a folder of many files, re-checked file by file on every "
                     f"`dvc repro`: write <folder>/{DIGEST_FILE} (audioprobe.runtime.digest) and depend on it: {big}")


def test_digest_changes_with_any_file_and_only_then(tmp_path):
    def folder(name: str, files: dict[str, bytes]) -> Path:
        root = tmp_path / name
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return root

    base = {"audio/a.wav": b"RIFF-a", "audio/b.wav": b"RIFF-b", "clips.parquet": b"PAR1"}
    ref = write_digest(folder("ref", base))
    assert ref["files"] == 3
    assert write_digest(folder("same", base)) == ref  # same content, same digest
    assert write_digest(folder("edited", {**base, "audio/b.wav": b"RIFF-B"}))["sha256"] != ref["sha256"]
    assert write_digest(folder("added", {**base, "audio/c.wav": b"RIFF-c"}))["sha256"] != ref["sha256"]
    renamed = {"audio/a.wav": b"RIFF-a", "audio/c.wav": b"RIFF-b", "clips.parquet": b"PAR1"}
    assert write_digest(folder("renamed", renamed))["sha256"] != ref["sha256"]
    removed = dict(list(base.items())[1:])
    assert write_digest(folder("removed", removed))["sha256"] != ref["sha256"]
    rec = json.loads((tmp_path / "ref" / DIGEST_FILE).read_text())
    assert rec == ref
    with pytest.raises(FileExistsError, match="write the digest once"):
        write_digest(tmp_path / "ref")


def test_url_source_record_covers_the_extracted_files(tmp_path, monkeypatch):
    """The archive's sha256 alone would not change if extraction produced other files."""
    from corpora import esc_archive

    arc = esc_archive(tmp_path)
    cfg = Esc50(source="url", url=arc.as_uri(), sha256=sha256_file(arc))
    (tmp_path / "o1").mkdir()
    first = materialise("esc50", cfg, tmp_path / "o1", False)
    extract = sources.extract

    def extract_then_edit(archive, out):
        extract(archive, out)
        meta = out / "ESC-50-master" / "meta" / "esc50.csv"
        meta.write_text(meta.read_text() + "\n")

    monkeypatch.setattr(sources, "extract", extract_then_edit)
    (tmp_path / "o2").mkdir()
    second = materialise("esc50", cfg, tmp_path / "o2", False)
    assert first["sha256"] == second["sha256"] == sha256_file(arc)
    assert first["content_sha256"] != second["content_sha256"]
    assert json.loads((tmp_path / "o2" / "source.json").read_text())["content_sha256"] == second["content_sha256"]


PRODUCE = """
import sys, yaml
from pathlib import Path
from audioprobe.runtime.atomic import atomic_dir
from audioprobe.runtime.digest import write_digest
p = yaml.safe_load(Path("params.yaml").read_text())
with atomic_dir(Path("out")) as tmp:
    for i in range(p["n"]):
        (tmp / f"clip{i}.txt").write_text(f"clip {i} gain {p['gain']}\\n")
    write_digest(tmp)
"""
CONSUME = """
from pathlib import Path
texts = [p.read_text() for p in sorted(Path("out").glob("clip*.txt"))]
Path("result.txt").write_text("".join(texts))
"""
DVC_YAML = """
stages:
  produce:
    cmd: python produce.py
    deps: [produce.py]
    params: [n, gain]
    outs: [out]
  consume:
    cmd: python consume.py
    deps: [consume.py, out/digest.json]
    outs: [result.txt]
"""


@pytest.mark.e2e
def test_dvc_reruns_a_digest_consumer_exactly_when_the_folder_changes(tmp_path):
    """The real dvc: ordering through a file inside another stage's output, reruns, restores."""
    root = tmp_path / "toy"
    root.mkdir()
    (root / "produce.py").write_text(PRODUCE)
    (root / "consume.py").write_text(CONSUME)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text("n: 3\ngain: 1\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(REPO / "lib"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(*args: str) -> str:
        cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    out = run("dvc", "repro")
    assert "Running stage 'produce'" in out and "Running stage 'consume'" in out
    assert out.index("'produce'") < out.index("'consume'")  # ordered by out/digest.json
    assert "Running stage" not in run("dvc", "repro")  # a no-op

    # every file's content counts: a change inside the clips (same names) reruns the consumer
    (root / "params.yaml").write_text("n: 3\ngain: 2\n")
    out = run("dvc", "repro")
    assert "Running stage 'consume'" in out
    assert (root / "result.txt").read_text().count("gain 2") == 3

    # a hand edit of the folder marks the producer changed; repro restores it first
    (root / "out" / "clip0.txt").write_text("tampered\n")
    assert "produce" in run("dvc", "status")
    out = run("dvc", "repro")
    assert "consume" not in out.replace("Stage 'consume' didn't change", "")
    assert (root / "out" / "clip0.txt").read_text() == "clip 0 gain 2\n"
    assert "up to date" in run("dvc", "status")
