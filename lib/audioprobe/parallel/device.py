"""Which torch device a stage runs on: 'auto' | 'cpu' | 'cuda' from params, said once."""

from __future__ import annotations

import sys

import torch

from audioprobe.runtime.errors import ParamsError

_announced: set[str] = set()


def pick_device(device: str, param: str = "device") -> torch.device:
    """Return the torch device for 'auto' | 'cpu' | 'cuda[:N]' ('auto' = cuda when available).

    'auto' on a machine without CUDA falls back to the CPU and says so once per process
    on stderr; an explicit 'cuda' without a CUDA device is a one-line ParamsError naming
    `param` (the params key), never a traceback from deep inside torch.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if param not in _announced:
            _announced.add(param)
            print(f"{param}: auto -> cpu (torch sees no CUDA device)", file=sys.stderr)
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(
            f"params.yaml: {param} is {device!r} but torch sees no CUDA device here; set it to 'auto' or 'cpu'"
        )
    return torch.device(device)
