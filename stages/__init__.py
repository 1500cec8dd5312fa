"""Thin DVC stage commands: parse args, load their params group, call lib, write atomically.

Importing this package pins the numeric environment before a stage module imports numpy or
torch, so every `python -m stages.<name>` (DVC stage, torchrun worker, test subprocess) runs
the same kernels and thread counts on any x86-64 machine (audioprobe.runtime.numerics).
"""

import sys

from audioprobe.runtime import numerics

try:
    numerics.pin()
except numerics.NumericsError as exc:
    sys.exit(f"error: {exc}")
