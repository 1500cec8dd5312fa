"""reason_train_shuffled: the shuffled-audio control of one encoder (each question heard with another clip's audio).

reason_train's command with `--encoder <e>` read as `--arm shuffled_<e>`, unchanged otherwise; a stage
of its own so that it depends on that encoder's features alone (dvc.yaml).
"""

from __future__ import annotations

import sys

from stages import reason_train
from stages._run import run


def arm_args(argv: list[str]) -> list[str]:
    """`--encoder E` (or `--encoder=E`) becomes `--arm shuffled_E`; every other argument stays."""
    out, it = [], iter(argv)
    for a in it:
        if a == "--encoder":
            out += ["--arm", f"shuffled_{next(it, '')}"]
        elif a.startswith("--encoder="):
            out.append(f"--arm=shuffled_{a.split('=', 1)[1]}")
        else:
            out.append(a)
    return out


if __name__ == "__main__":
    sys.argv[1:] = arm_args(sys.argv[1:])
    run(reason_train.app)
