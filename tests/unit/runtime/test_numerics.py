"""The pinned numeric environment: applied by every stage process on import, overriding a hostile
environment, recorded in provenance; `numerics: native` leaves the environment alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audioprobe.runtime import numerics
from conftest import HOSTILE_NUMERICS, REPO, stage_env

HOSTILE = HOSTILE_NUMERICS
PROBE = ("import json, torch; from audioprobe.runtime import numerics; "
         "print(json.dumps({**numerics.record(), 'threads': torch.get_num_threads()}))")

needs_reference_cpu = pytest.mark.skipif(not numerics.cpu_supports_reference()[0],
                                         reason=f"no AVX2 reference kernels here: {numerics.cpu_supports_reference()[1]}")


def _probe(code: str, tmp_path, params: str | None = None, args: tuple[str, ...] = ()) -> dict:
    if params is not None:
        (tmp_path / "params.yaml").write_text(params)
    env = {**stage_env(), **HOSTILE}
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_reference_cpu
def test_importing_the_stages_package_pins_over_a_hostile_environment(tmp_path):
    """What `python -m stages.<name>` does first: torch then dispatches to AVX2 with 2 threads."""
    rec = _probe(f"import stages; {PROBE}", tmp_path, params="seed: 1\n")
    assert rec["mode"] == "pinned"
    assert {k: rec[k] for k in numerics.PINNED_ENV} == numerics.PINNED_ENV
    assert rec["torch_cpu_capability"] == "AVX2" and rec["threads"] == numerics.THREADS


def test_without_the_pin_the_hostile_environment_wins(tmp_path):
    """The control for the test above: the probe would see the hostile kernels unpinned."""
    rec = _probe(PROBE, tmp_path)
    assert rec["torch_cpu_capability"] == "DEFAULT" and rec["threads"] == 1


def test_native_mode_leaves_the_environment_alone(tmp_path):
    rec = _probe(f"import stages; {PROBE}", tmp_path, params="numerics: native\n")
    assert rec["mode"] == "native" and rec["ATEN_CPU_CAPABILITY"] == "default"
    assert rec["torch_cpu_capability"] == "DEFAULT" and rec["threads"] == 1


@needs_reference_cpu
def test_a_stage_reads_the_mode_from_its_params_option(tmp_path):
    (tmp_path / "other.yaml").write_text("numerics: native\n")
    code = f"import sys; sys.argv[1:] = ['--params', 'other.yaml']; import stages; {PROBE}"
    assert _probe(code, tmp_path, params="numerics: pinned\n")["mode"] == "native"
    assert _probe(f"import stages; {PROBE}", tmp_path)["mode"] == "pinned"


@needs_reference_cpu
def test_pinning_after_numpy_was_loaded_with_other_kernels_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import numpy, stages"], cwd=tmp_path,
                          env={**stage_env(), **HOSTILE}, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error: numpy loaded before the numeric environment was pinned")


def test_a_bad_mode_is_one_line_naming_the_param(tmp_path):
    (tmp_path / "params.yaml").write_text("numerics: fast\n")
    with pytest.raises(numerics.NumericsError, match=r"params\.yaml: numerics must be one of pinned, native, got 'fast'"):
        numerics.mode_from_params(tmp_path / "params.yaml")


def test_params_path_follows_the_stage_option():
    assert numerics.params_path(["--out", "x", "--params", "p.yaml"]).name == "p.yaml"
    assert numerics.params_path(["--params=q.yaml"]).name == "q.yaml"
    assert numerics.params_path(["--out", "x"]).name == "params.yaml"


def test_the_repository_default_is_pinned():
    assert numerics.mode_from_params(REPO / "params.yaml") == "pinned"
