"""The set-up admits Python 3.11-3.13: pyproject, the one universal lock, and the Makefile's
interpreter search and torch check (run for real against fake interpreters, no network)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
SUPPORTED = ["3.11", "3.12", "3.13"]
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="GNU make not installed")


def _env(version: str) -> dict[str, str]:
    """Marker environment of CPython `version` on Linux x86_64 (what the Makefile sets up)."""
    return {"python_version": version, "python_full_version": f"{version}.0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _lock_for(version: str) -> dict[str, str]:
    """name -> pinned version of every requirements.lock line whose marker holds on `version`."""
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not line or line[0] in "# ":
            continue
        req = Requirement(line)  # every line, marker included, must parse
        if req.marker is not None and not req.marker.evaluate(_env(version)):
            continue
        assert req.name not in pins, f"{req.name} pinned twice for Python {version}"
        (spec,) = req.specifier
        assert spec.operator == "==", line
        pins[req.name.lower().replace("_", "-").replace(".", "-")] = spec.version
    return pins


def test_requires_python_admits_exactly_3_11_to_3_13():
    spec = SpecifierSet(_project()["project"]["requires-python"])
    for v in SUPPORTED:
        assert spec.contains(f"{v}.0") and spec.contains(f"{v}.9"), v
    assert not spec.contains("3.10.14") and not spec.contains("3.14.0")


def test_uv_environments_are_the_supported_pythons_on_linux_x86_64():
    envs = [Marker(m) for m in _project()["tool"]["uv"]["environments"]]
    for v in SUPPORTED:
        assert any(m.evaluate(_env(v)) for m in envs), v
    assert not any(m.evaluate(_env("3.14")) for m in envs)
    assert not any(m.evaluate({**_env("3.11"), "platform_machine": "aarch64"}) for m in envs)


@pytest.mark.parametrize("version", SUPPORTED)
def test_lock_pins_every_dependency_once_for_each_supported_python(version):
    pins = _lock_for(version)
    assert "torch" not in pins  # installed first and alone, from the right index (Makefile)
    project = _project()["project"]
    reqs = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    missing = []
    for raw in reqs:
        req = Requirement(raw)
        key = req.name.lower().replace("_", "-").replace(".", "-")
        if key in {"torch", "audioprobe"} or (req.marker and not req.marker.evaluate(_env(version))):
            continue
        if key not in pins:
            missing.append(raw)
        else:
            assert req.specifier.contains(pins[key], prereleases=True), f"{raw} excludes locked {pins[key]}"
    assert not missing, f"Python {version}: {missing}"


def test_lock_gives_3_13_its_replacements_for_removed_stdlib_modules_and_3_11_nothing_extra():
    # librosa/audioread need aifc/sunau/audioop, removed from the standard library in 3.13.
    only_313 = set(_lock_for("3.13")) - set(_lock_for("3.11"))
    assert {"standard-aifc", "standard-sunau", "audioop-lts"} <= only_313
    assert set(_lock_for("3.11")) <= set(_lock_for("3.13"))
    assert _lock_for("3.14") == {}  # outside the lock's environments: nothing applies


# --- the Makefile, run for real with fake interpreters on a PATH that holds nothing else ---

def _fake_python(bin_dir: Path, name: str, version: str | None) -> Path:
    """`name` on PATH: this interpreter pretending to be `version` for -c code; None: a pyenv-style
    shim for a version that is not selected (exists, fails)."""
    path = bin_dir / name
    if version is None:
        body = f'echo "pyenv: {name}: command not found" >&2; exit 127\n'
    else:
        major, minor = version.split(".")
        patch = f"import sys; sys.version_info = ({major}, {minor}, 0, 'final', 0); exec(compile(sys.argv[1], '-c', 'exec'))"
        body = f'if [ "$1" = -c ]; then exec {sys.executable} -c "{patch}" "$2"; fi\nexec {sys.executable} "$@"\n'
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _checkout(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("Makefile", "requirements.lock", "pyproject.toml"):
        shutil.copy2(REPO / name, work / name)
    (work / "bin").mkdir()
    for tool in ("touch",):  # the only external command the venv recipe runs besides pip/python
        os.symlink(shutil.which(tool), work / "bin" / tool)
    return work


def _make(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": str(work / "bin"), "HOME": str(work), "LC_ALL": "C"}
    return subprocess.run([MAKE, "--no-print-directory", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)


def _chosen(work: Path, *args: str) -> str:
    out = _make(work, "--eval", "__py: ; @echo [$(PY)]", "__py", *args)
    assert out.returncode == 0, out.stderr
    return re.fullmatch(r"\[(.*)\]\n", out.stdout).group(1)


def _own_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("make: ***")]


@needs_make
@pytest.mark.parametrize(("fakes", "expected"), [
    ({"python3.11": "3.11", "python3.12": "3.12", "python3": "3.12"}, "python3.11"),  # the reference first
    ({"python3.12": "3.12", "python3.13": "3.13"}, "python3.12"),
    ({"python3.11": None, "python3.13": "3.13"}, "python3.13"),  # a shim that fails does not count
    ({"python3": "3.13"}, "python3"),
    ({"python3": "3.14", "python3.13": "3.13"}, "python3.13"),
    ({"python3": "3.10"}, ""),
    ({"python3": "3.14"}, ""),
])
def test_makefile_finds_a_supported_interpreter(tmp_path, fakes, expected):
    work = _checkout(tmp_path)
    for name, version in fakes.items():
        _fake_python(work / "bin", name, version)
    assert _chosen(work) == expected


@needs_make
def test_makefile_PY_overrides_the_search(tmp_path):
    work = _checkout(tmp_path)
    _fake_python(work / "bin", "python3.11", "3.11")
    _fake_python(work / "bin", "python3.12", "3.12")
    assert _chosen(work, "PY=python3.12") == "python3.12"


@needs_make
def test_no_supported_python_stops_with_one_line_and_builds_nothing(tmp_path):
    work = _checkout(tmp_path)
    _fake_python(work / "bin", "python3", "3.10")
    out = _make(work, "venv")
    assert out.returncode != 0
    assert _own_lines(out.stderr) == [
        "No Python 3.11-3.13 found (tried python3.11 python3.12 python3.13 python3): install Python 3.11 "
        "(the reference platform; 3.12 or 3.13 also work) or name one with make venv PY=/path/to/python3.11"]
    assert not (work / ".venv").exists()


@needs_make
def test_an_unsuitable_PY_stops_with_one_line(tmp_path):
    work = _checkout(tmp_path)
    _fake_python(work / "bin", "python3.10", "3.10")
    out = _make(work, "venv", "PY=python3.10")
    assert out.returncode != 0
    lines = _own_lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith("PY=python3.10 is not a working Python 3.11-3.13: install")
    assert not (work / ".venv").exists()


def _fake_venv(work: Path, tmp_path: Path, torch_loads: bool) -> Path:
    """A .venv of this very interpreter whose pip only logs its arguments and whose torch is a
    stand-in: its _C extension either loads (a real extension module) or needs libcudnn.so.9."""
    site = tmp_path / "site" / "torch"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(
        "__version__ = '2.13.0+cpu'\nclass version: cuda = None\nclass cuda:\n"
        "    @staticmethod\n    def is_available(): return False\n")
    tag = sysconfig.get_config_var("EXT_SUFFIX")
    if torch_loads:
        lib_dynload = Path(sysconfig.get_config_var("DESTSHARED"))  # the stdlib's extension modules
        shutil.copy2(next(lib_dynload.glob("_json*.so")), site / f"_C{tag}")
    elif shutil.which("cc"):  # the real failure: a library that links one that is not there
        (tmp_path / "s.c").write_text("int f(void) { return 0; }\n")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", tmp_path / "libcudnn.so.9", tmp_path / "s.c",
                        "-Wl,-soname,libcudnn.so.9"], check=True)
        subprocess.run(["cc", "-shared", "-fPIC", "-o", site / f"_C{tag}", tmp_path / "s.c",
                        "-Wl,--no-as-needed", tmp_path / "libcudnn.so.9"], check=True)
        (tmp_path / "libcudnn.so.9").unlink()
    else:
        (site / f"_C{tag}").write_text("not a shared object")
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nPYTHONPATH={site.parent} exec {sys.executable} "$@"\n')
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "pip.log"}\n')
    for p in (bin_dir / "python", bin_dir / "pip"):
        p.chmod(0o755)
    # The interpreter that would build it: the same version, so the venv is kept, not rebuilt.
    me = f"{sys.version_info.major}.{sys.version_info.minor}"
    _fake_python(work / "bin", f"python{me}", me)
    return tmp_path / "pip.log"


@needs_make
def test_a_cuda_torch_without_its_libraries_stops_the_set_up_with_one_line(tmp_path):
    work = _checkout(tmp_path)
    pip_log = _fake_venv(work, tmp_path, torch_loads=False)
    out = _make(work, "venv")
    assert out.returncode != 0
    lines = _own_lines(out.stderr)
    assert len(lines) == 1, out.stderr
    line = lines[0]
    assert line.startswith("torch 2.13.0 does not load (OSError: ")
    if shutil.which("cc"):
        assert "libcudnn.so.9: cannot open shared object file" in line
    assert ("pip found no CPU build of torch 2.13.0 for this Python (is https://download.pytorch.org/whl/cpu "
            "reachable?) and installed PyPI's CUDA build without its CUDA libraries") in line
    for fix in ("rerun make once https://download.pytorch.org/whl/cpu is reachable",
                "make venv TORCH_INDEX=<a mirror of it>", "make venv TORCH_PIP_ARGS= for the CUDA build"):
        assert fix in line
    calls = pip_log.read_text().splitlines()
    assert calls[0].endswith("--no-deps --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0")
    assert calls[1:] == ["uninstall -q -y torch"]  # nothing else installed; a rerun starts afresh
    assert not (work / ".venv" / ".installed").exists()


@needs_make
def test_a_torch_that_loads_goes_on_to_the_lock_and_the_stamp(tmp_path):
    work = _checkout(tmp_path)
    pip_log = _fake_venv(work, tmp_path, torch_loads=True)
    out = _make(work, "venv")
    assert out.returncode == 0, out.stderr
    calls = pip_log.read_text().splitlines()
    assert [c.split()[-1] for c in calls] == ["torch==2.13.0", "requirements.lock", "msclap==1.3.4", "."]
    assert "torch 2.13.0+cpu: CPU build" in out.stdout
    assert (work / ".venv" / ".installed").exists()


@needs_make
def test_torch_with_its_dependencies_skips_the_no_deps_check(tmp_path):
    # GPU machines and TORCH_PIP_ARGS= install the CUDA build with its libraries: unchanged.
    work = _checkout(tmp_path)
    pip_log = _fake_venv(work, tmp_path, torch_loads=False)
    out = _make(work, "venv", "TORCH_PIP_ARGS=")
    assert out.returncode == 0, out.stderr
    assert pip_log.read_text().splitlines()[0] == "install -q --retries 2 torch==2.13.0"


@needs_make
def test_PY_of_another_python_rebuilds_an_up_to_date_venv(tmp_path):
    work = _checkout(tmp_path)
    _fake_venv(work, tmp_path, torch_loads=True)
    (work / ".venv" / ".installed").touch()
    me = f"{sys.version_info.major}.{sys.version_info.minor}"
    other = "3.13" if me == "3.12" else "3.12"
    _fake_python(work / "bin", f"python{other}", other)
    assert _make(work, "-q", "venv").returncode == 0  # `make -q`: 0 = up to date
    assert _make(work, "-q", "venv", f"PY=python{me}").returncode == 0
    assert _make(work, "-q", "venv", f"PY=python{other}").returncode == 1
