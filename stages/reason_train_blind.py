"""reason_train_blind: the blind control (no audio: a learned constant prefix per clip).

reason_train's command with `--arm blind`, unchanged; a stage of its own so that it depends on no
encoder's features (dvc.yaml).
"""

from __future__ import annotations

import sys

from stages import reason_train
from stages._run import run

if __name__ == "__main__":
    sys.argv[1:1] = ["--arm", "blind"]
    run(reason_train.app)
