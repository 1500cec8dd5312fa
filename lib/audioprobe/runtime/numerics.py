"""The pinned numeric environment: the same kernels and thread counts on every x86-64 machine.

Numeric libraries pick their kernels by CPU at load time: torch's ATen (AVX2 or AVX-512
vectorised loops), MKL and oneDNN (torch's BLAS and convolutions), OpenBLAS (numpy, scipy,
scikit-learn). Different kernels round differently, so on an AVX-512 machine the committed
outputs (trained on an AVX2 one) changed in 79 files until the four ISA variables below were
set before the stage process started. Thread counts matter the same way: a parallel sum
splits its work by thread, so OpenMP, MKL, OpenBLAS and polars get a fixed count too.

`pin()` sets them in `os.environ` and must run before numpy, torch or scikit-learn is
imported: importing the `stages` package calls it, so every `python -m stages.<name>` (a DVC
stage, each torchrun worker, a test subprocess) starts pinned, and `tests/conftest.py` pins
the test process itself. Children inherit the environment.

The one switch is the top-level param `numerics` (params.yaml): `pinned` (default) or
`native` (each library's own choice for this CPU: sometimes faster, and results then depend
on the processor). Every stage lists it, so switching reruns the pipeline, and every lane's
`provenance.json` records the mode with the kernel ISA torch actually ran (`record()`).

Reference platform: x86-64 with AVX2 (and FMA). On an x86-64 CPU without AVX2, or on another
architecture (ARM), there is nothing to pin to: the mode is recorded as `native` with the
reason, and results are comparable to the committed ones within tolerance only.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

MODES = ("pinned", "native")
# Kernel ISA: torch ATen's vectorised loops, MKL's code path (conditional numerical
# reproducibility), oneDNN's highest ISA, OpenBLAS's core type (Haswell = its AVX2 kernels).
ISA_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
}
# The reference machine's core count; a stage that sets its own torch threads from params
# (e.g. kws.train.threads) keeps that setting, which is pinned by the params file.
THREADS = 2
THREAD_ENV = {name: str(THREADS) for name in
              ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS")}
PINNED_ENV = {**ISA_ENV, **THREAD_ENV}
# Loaded before pin() they would have chosen their kernels and thread pools already.
NUMERIC_MODULES = ("numpy", "torch", "scipy", "sklearn", "polars")


class NumericsError(RuntimeError):
    """The numeric environment cannot be pinned as asked (one line saying what to do)."""


def cpu_supports_reference() -> tuple[bool, str]:
    """(True, '') on an x86-64 CPU with AVX2 and FMA; else (False, why not)."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return False, f"{machine} is not x86-64"
    try:
        flags = next((ln.split(":", 1)[1].split() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("flags")), [])
    except OSError:  # not Linux: assume a current x86-64 CPU (AVX2 since 2013)
        return True, ""
    missing = [f for f in ("avx2", "fma") if f not in flags]
    return (False, f"this CPU lacks {' and '.join(missing)}") if missing else (True, "")


def mode_from_params(path: str | Path = "params.yaml") -> str:
    """The `numerics` param of a params file ('pinned' when the file or the key is absent)."""
    path = Path(path)
    if not path.is_file():
        return "pinned"
    import yaml

    raw = yaml.safe_load(path.read_text()) or {}
    mode = raw.get("numerics", "pinned") if isinstance(raw, dict) else "pinned"
    if mode not in MODES:
        raise NumericsError(f"{path}: numerics must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def params_path(argv: list[str]) -> Path:
    """The params file a stage command line names with `--params` (default params.yaml)."""
    for i, arg in enumerate(argv):
        if arg == "--params" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--params="):
            return Path(arg.split("=", 1)[1])
    return Path("params.yaml")


def pin(mode: str | None = None) -> str:
    """Apply the numeric environment for `mode` (default: the params file's); return the mode applied.

    pinned: PINNED_ENV overrides whatever the environment held (a stray ATEN_CPU_CAPABILITY
    would otherwise undo the pin). native: the environment is left as it is. Raises
    NumericsError when pinning is asked for after a numeric library was loaded with other
    settings, since it could no longer take effect.
    """
    mode = mode or mode_from_params(params_path(sys.argv))
    ok, _why = cpu_supports_reference()
    if mode == "native" or not ok:
        os.environ["AUDIOPROBE_NUMERICS"] = "native"
        return "native"
    stale = [k for k, v in PINNED_ENV.items() if os.environ.get(k) != v]
    loaded = [m for m in NUMERIC_MODULES if m in sys.modules]
    if stale and loaded:
        raise NumericsError(f"{', '.join(loaded)} loaded before the numeric environment was pinned "
                            f"({', '.join(stale)} not set): run stages as `python -m stages.<name>`, or set "
                            f"numerics: native in params.yaml")
    os.environ.update(PINNED_ENV)
    os.environ["AUDIOPROBE_NUMERICS"] = "pinned"
    return "pinned"


def record() -> dict[str, str | int]:
    """What this process ran with, for provenance: the mode, the ISA variables and the kernel ISA
    torch actually dispatches to (queried only when torch is loaded, as it is in every stage that
    trains or encodes)."""
    ok, why = cpu_supports_reference()
    mode = os.environ.get("AUDIOPROBE_NUMERICS", "unpinned")
    out: dict[str, str | int] = {"mode": mode}
    if mode == "native" and not ok:
        out["why"] = f"nothing to pin to: {why}"
    for name in (*ISA_ENV, *THREAD_ENV):
        out[name] = os.environ.get(name, "unset")
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return out
