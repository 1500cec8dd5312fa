"""Dataset sources: path (manifest, read in place), url (checksum, safe extraction), embedded; dataset_root."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from audioprobe.data import esc50
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.sources import extract, materialise
from audioprobe.data.synth import esc50 as s_esc50
from audioprobe.runtime.errors import DataError
from audioprobe.data.params import Esc50, Esc50Embedded
from audioprobe.runtime.provenance import sha256_file, sha256_tree

TINY = Esc50Embedded(classes=2, clips_per_fold=1)


@pytest.fixture(scope="module")
def esc_copy(tmp_path_factory) -> Path:
    """A tiny ESC-50 layout (10 clips) written once; tests copy it before changing it."""
    root = tmp_path_factory.mktemp("src") / "ESC-50"
    s_esc50.write(root, TINY)
    return root


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


# ------------------------------------------------------------------ path
def _params(tmp_path: Path, copy: Path) -> Path:
    f = tmp_path / "params.yaml"
    f.write_text(f"data:\n  esc50:\n    source: path\n    path: {copy}\n")
    return f


def test_path_source_writes_manifest_and_no_host_path(esc_copy, tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    rec = materialise("esc50", Esc50(source="path", path=str(esc_copy)), out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.tsv", "source.json"]  # nothing copied
    lines = (out / "manifest.tsv").read_text().splitlines()
    files = sorted(p for p in esc_copy.rglob("*") if p.is_file())
    assert len(lines) == len(files) == 11  # 10 clips + meta/esc50.csv
    for ln, f in zip(lines, files):
        rel, size, digest = ln.split("\t")
        assert rel == f.relative_to(esc_copy).as_posix()
        assert int(size) == f.stat().st_size and digest == sha256_file(f)
    src = json.loads((out / "source.json").read_text())
    assert src == rec and src["source"] == "path" and src["files"] == 10
    assert src == {"source": "path", "dataset": "esc50", "sha256": src["sha256"], "files": 10}
    assert str(tmp_path) not in (out / "source.json").read_text() + (out / "manifest.tsv").read_text()
    assert src["sha256"] == hashlib.sha256((out / "manifest.tsv").read_bytes()).hexdigest()
    params_file = _params(tmp_path, esc_copy)
    assert dataset_root(out, params_file) == esc_copy
    assert len(esc50.list_clips(dataset_root(out, params_file))) == 10


def test_path_source_same_content_elsewhere_same_bytes(esc_copy, tmp_path):
    """Content decides, not where the copy lives: a second copy gives byte-identical outputs."""
    other = _copy(esc_copy, tmp_path / "elsewhere" / "ESC-50")
    a = materialise("esc50", Esc50(source="path", path=str(esc_copy)), _mk(tmp_path / "a"))
    b = materialise("esc50", Esc50(source="path", path=str(other)), _mk(tmp_path / "b"))
    assert a == b
    for name in ("source.json", "manifest.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert dataset_root(tmp_path / "a", _params(tmp_path, other)) == other


def test_path_source_reader_refuses_a_copy_that_changed(esc_copy, tmp_path):
    copy = _copy(esc_copy, tmp_path / "ESC-50")
    out = _mk(tmp_path / "raw")
    materialise("esc50", Esc50(source="path", path=str(copy)), out)
    params_file = _params(tmp_path, copy)
    wav = sorted((copy / "audio").glob("*.wav"))[0]
    wav.unlink()
    with pytest.raises(DataError, match=r"1 file\(s\) missing or changed.*dvc repro data_download@esc50"):
        dataset_root(out, params_file)
    with pytest.raises(DataError, match=r"data\.esc50\.path .* is not a folder"):
        dataset_root(out, _params(tmp_path, tmp_path / "gone"))


def test_path_manifest_hash_follows_one_byte(esc_copy, tmp_path):
    root = _copy(esc_copy, tmp_path / "ESC-50")
    cfg = Esc50(source="path", path=str(root))
    first = materialise("esc50", cfg, _mk(tmp_path / "o1"))
    again = materialise("esc50", cfg, _mk(tmp_path / "o2"))
    assert first["sha256"] == again["sha256"]
    wav = sorted((root / "audio").glob("*.wav"))[3]
    data = bytearray(wav.read_bytes())
    data[-1] ^= 0x01  # one sample bit: still valid audio
    wav.write_bytes(bytes(data))
    changed = materialise("esc50", cfg, _mk(tmp_path / "o3"))
    assert changed["sha256"] != first["sha256"]
    diff = set((tmp_path / "o3" / "manifest.tsv").read_text().splitlines()) ^ set(
        (tmp_path / "o1" / "manifest.tsv").read_text().splitlines())
    assert {ln.split("\t")[0] for ln in diff} == {f"audio/{wav.name}"}


def test_path_manifest_skips_hidden_files(esc_copy, tmp_path):
    root = _copy(esc_copy, tmp_path / "ESC-50")
    base = materialise("esc50", Esc50(source="path", path=str(root)), _mk(tmp_path / "o1"))
    (root / ".DS_Store").write_bytes(b"junk")
    (root / ".cache").mkdir()
    (root / ".cache" / "x").write_bytes(b"junk")
    assert materialise("esc50", Esc50(source="path", path=str(root)), _mk(tmp_path / "o2"))["sha256"] == base["sha256"]


def test_path_source_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"data\.esc50\.path"):
        materialise("esc50", Esc50(source="path", path=str(tmp_path / "nope")), _mk(tmp_path / "o"))
    # the default path is the placeholder folder data/local/esc50 (a DVC dep): it holds no copy
    with pytest.raises(DataError, match=r"data/local/esc50/meta/esc50\.csv: missing"):
        materialise("esc50", Esc50(source="path"), _mk(tmp_path / "o2"))


def _mk(p: Path) -> Path:
    p.mkdir(parents=True)
    return p


# ------------------------------------------------------------------ embedded
def test_embedded_source_and_dataset_root(tmp_path):
    out = _mk(tmp_path / "raw" / "esc50")
    rec = materialise("esc50", Esc50(embedded=TINY), out)
    src = read_source(out)
    assert src == rec and src["source"] == "embedded" and src["root"] == "ESC-50" and src["files"] == 10
    assert src["embedded"] == TINY.model_dump()
    root = dataset_root(out)
    assert root == out / "ESC-50"
    assert src["sha256"] == sha256_tree(root)
    assert len(esc50.list_clips(root)) == 10


def test_dataset_root_errors(tmp_path):
    with pytest.raises(DataError, match="data_download@esc50"):
        dataset_root(_mk(tmp_path / "esc50"))
    (tmp_path / "esc50" / "source.json").write_text(json.dumps({"source": "embedded", "root": "gone"}))
    with pytest.raises(DataError, match="does not exist"):
        dataset_root(tmp_path / "esc50")


# ------------------------------------------------------------------ url
def _archive(esc_copy: Path, dest: Path, kind: str) -> Path:
    """The official archive shape: everything under ESC-50-master/."""
    if kind == "tar.gz":
        with tarfile.open(dest, "w:gz") as t:
            t.add(esc_copy, arcname="ESC-50-master")
    else:
        with zipfile.ZipFile(dest, "w") as z:
            for f in sorted(esc_copy.rglob("*")):
                if f.is_file():
                    z.write(f, f"ESC-50-master/{f.relative_to(esc_copy).as_posix()}")
    return dest


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_url_source_verifies_and_extracts(esc_copy, tmp_path, kind):
    arc = _archive(esc_copy, tmp_path / f"master.{kind}", kind)
    out = _mk(tmp_path / "out")
    cfg = Esc50(source="url", url=arc.as_uri(), sha256=sha256_file(arc).upper())
    rec = materialise("esc50", cfg, out)
    assert rec["source"] == "url" and rec["sha256"] == sha256_file(arc) and rec["url"] == arc.as_uri()
    assert not (out / ".download").exists()  # the archive is not kept
    root = dataset_root(out)
    assert root == out / "ESC-50-master"
    assert sha256_tree(root) == sha256_tree(esc_copy)


def test_url_source_wrong_sha256(esc_copy, tmp_path):
    arc = _archive(esc_copy, tmp_path / "master.zip", "zip")
    out = _mk(tmp_path / "out")
    with pytest.raises(DataError, match="does not match"):
        materialise("esc50", Esc50(source="url", url=arc.as_uri(), sha256="0" * 64), out)
    assert not (out / "ESC-50-master").exists()  # nothing extracted from an unverified archive


def test_url_source_unreachable_and_empty(tmp_path):
    with pytest.raises(DataError, match="download failed"):
        materialise("esc50", Esc50(source="url", url=(tmp_path / "none.zip").as_uri(), allow_unverified=True),
                    _mk(tmp_path / "o1"))
    with pytest.raises(DataError, match=r"data\.esc50\.url is empty"):
        materialise("esc50", Esc50(source="url", url=""), _mk(tmp_path / "o2"))


def test_zip_member_escaping_is_refused(tmp_path):
    arc = tmp_path / "evil.zip"
    with zipfile.ZipFile(arc, "w") as z:
        z.writestr("ESC-50-master/meta/esc50.csv", "filename\n")
        z.writestr("../../escaped.txt", "gotcha")
    out = _mk(tmp_path / "a" / "b" / "out")
    with pytest.raises(DataError, match="escapes the output folder"):
        extract(arc, out)
    assert not (tmp_path / "a" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not any(out.iterdir())  # checked before anything was written


@pytest.mark.parametrize("stdlib_filter", [True, False])  # False: Python 3.11.0-3.11.3, no tarfile.data_filter
def test_tar_member_escaping_is_refused(tmp_path, monkeypatch, stdlib_filter):
    if not stdlib_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python's tarfile has no extraction filters (< 3.11.4)")
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as t:
        info = tarfile.TarInfo("ESC-50-master/meta/esc50.csv")
        info.size = 9
        t.addfile(info, io.BytesIO(b"filename\n"))
    extract(good, _mk(tmp_path / "ok"))
    assert (tmp_path / "ok" / "ESC-50-master" / "meta" / "esc50.csv").read_bytes() == b"filename\n"
    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as t:
        info = tarfile.TarInfo("ESC-50-master/evil")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with pytest.raises(DataError, match="cannot extract|link or special file"):
        extract(link, _mk(tmp_path / "l"))
    arc = tmp_path / "evil.tar.gz"
    with tarfile.open(arc, "w:gz") as t:
        data = b"gotcha"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    out = _mk(tmp_path / "a" / "out")
    with pytest.raises(DataError, match="cannot extract|escapes the output folder"):
        extract(arc, out)
    assert not (tmp_path / "a" / "escaped.txt").exists()
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(DataError, match="cannot extract"):
        extract(junk, _mk(tmp_path / "c"))


def test_url_source_reports_bad_audio_in_archive(esc_copy, tmp_path):
    root = _copy(esc_copy, tmp_path / "ESC-50")
    victim = sorted((root / "audio").glob("*.wav"))[0]
    victim.write_bytes(victim.read_bytes()[:-10])
    arc = _archive(root, tmp_path / "master.tar.gz", "tar.gz")
    with pytest.raises(DataError, match=rf"1 problem\(s\) in 10 audio file\(s\)(.|\n)*"
                                        rf"\(archive\) ESC-50-master/audio/{victim.name}: truncated"):
        materialise("esc50", Esc50(source="url", url=arc.as_uri(), sha256=sha256_file(arc)), _mk(tmp_path / "out"))
