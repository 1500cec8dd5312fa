"""The installed environment matches the lock: pip check is clean but for the two --no-deps packages."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker

REPO = Path(__file__).resolve().parents[2]
# Installed with --no-deps on purpose (Makefile: NO_DEPS): their declared pins cannot
# co-install with torch>=2.10 / transformers 5 / numpy 2, and both work with this stack.
NO_DEPS = {"moshi", "msclap"}


def _lock() -> dict[str, str]:
    """Pins that apply to this interpreter (the lock covers Python 3.11-3.13 with markers)."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)\s*(?:;(.*))?$", line)
        if m and (not m.group(3) or Marker(m.group(3)).evaluate()):
            pins[m.group(1).lower().replace("_", "-").replace(".", "-")] = m.group(2)
    return pins


def test_pip_check_is_clean_apart_from_the_no_deps_packages():
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).stdout
    problems = [ln for ln in out.splitlines() if ln.strip() and ln.split()[0].lower() not in NO_DEPS
                and not ln.startswith("No broken requirements")]
    assert not problems, "\n".join(problems)


def test_every_locked_package_is_installed_at_its_pinned_version():
    pins = _lock()
    assert "torch" not in pins  # installed first, from the right index (Makefile)
    assert len(pins) > 50
    wrong = []
    for name, version in pins.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} missing")
            continue
        if have != version:
            wrong.append(f"{name} {have} != {version}")
    assert not wrong, wrong


def test_pyproject_ranges_admit_the_locked_versions():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    pins = _lock()
    for raw in reqs:
        req = Requirement(raw)
        key = req.name.lower().replace("_", "-").replace(".", "-")
        if key in pins:
            assert req.specifier.contains(pins[key], prereleases=True), f"{raw} excludes locked {pins[key]}"
