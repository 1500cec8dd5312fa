"""Shared test fixtures: paths to ../shared/fixtures and a temp-repo runner for real dvc."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
from audioprobe.runtime import numerics  # noqa: E402  (before anything imports numpy or torch)

# The test process and every subprocess it starts (they inherit the environment) run under
# the numeric environment of params.yaml; AUDIOPROBE_TEST_NUMERICS=native runs the in-process
# tests on this CPU's own kernels instead (fitted-value tests must pass both ways).
NUMERICS = numerics.pin(os.environ.get("AUDIOPROBE_TEST_NUMERICS") or numerics.mode_from_params(REPO / "params.yaml"))

import pytest  # noqa: E402
import yaml  # noqa: E402
FIXTURES = REPO.parent / "shared" / "fixtures"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DVC_NO_ANALYTICS": "1",
    "MPLBACKEND": "Agg",
}
os.environ.update(OFFLINE_ENV)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """../shared/fixtures, or skip when this checkout has no shared folder beside it."""
    if not FIXTURES.is_dir():
        pytest.skip(f"real fixtures not found at {FIXTURES} (needs ../shared beside the repo)")
    return FIXTURES


def deep_update(base: dict, override: dict) -> dict:
    """Return base with override merged in recursively (override wins)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# What another machine's shell might hold: every numeric variable off its pinned value. A stage
# process must pin over it (tests/unit/runtime/test_numerics.py, the kws end-to-end test).
HOSTILE_NUMERICS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41",
                    "OPENBLAS_CORETYPE": "Prescott", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "OPENBLAS_NUM_THREADS": "1", "POLARS_MAX_THREADS": "1", "AUDIOPROBE_NUMERICS": "native"}


def stage_env(extra: dict | None = None) -> dict:
    """Return the environment for a stage run in a subprocess: repo lib on the path, offline."""
    return {**os.environ, "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{REPO}", **OFFLINE_ENV, **(extra or {})}


class TempRepo:
    """A git-initialised copy of this repository in a temp dir, driven with the real dvc."""

    def __init__(self, root: Path):
        self.root = root
        # The copy's own lib/ comes first, so its stages run the code its dvc.lock hashes.
        self.env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": f"{root / 'lib'}{os.pathsep}{root}"}
        bindir = str(Path(sys.executable).parent)
        self.env["PATH"] = bindir + os.pathsep + self.env.get("PATH", "")

    def set_params(self, override: dict) -> None:
        """Merge `override` into params.yaml."""
        p = self.root / "params.yaml"
        merged = deep_update(yaml.safe_load(p.read_text()), override)
        p.write_text(yaml.safe_dump(merged, sort_keys=False))

    def run(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        """Run a command in the temp repo; `dvc` resolves to this venv's dvc."""
        cmd = list(args)
        if cmd[0] == "dvc":
            cmd = [sys.executable, "-m", "dvc", *cmd[1:]]
        proc = subprocess.run(
            cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({proc.returncode})\n--- stdout\n{proc.stdout[-4000:]}"
                f"\n--- stderr\n{proc.stderr[-4000:]}"
            )
        return proc

    def commit(self, msg: str = "wip") -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", msg, "--allow-empty")


def make_temp_repo(dest: Path) -> TempRepo:
    """Copy the tracked + untracked-not-ignored files of this repo to dest and git-init it."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # Outputs committed to git in the real repo (metrics, plot data, dvc.lock) are
    # dropped so each test starts from a fresh clone's state minus any prior run.
    (dest / "dvc.lock").unlink(missing_ok=True)
    repo = TempRepo(dest)
    repo.run("git", "init", "-q")
    repo.run("git", "config", "user.email", "test@audioprobe")
    repo.run("git", "config", "user.name", "audioprobe tests")
    repo.commit("copy")
    return repo


@pytest.fixture
def temp_repo(tmp_path: Path) -> TempRepo:
    """A fresh git+dvc copy of the repository (function scope)."""
    return make_temp_repo(tmp_path / "repo")
