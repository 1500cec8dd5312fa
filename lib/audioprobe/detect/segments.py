"""Energy-guided segment choice: where in a source file a clip of a given duration may start."""

from __future__ import annotations

import numpy as np


def frame_activity(wave: np.ndarray, frame: int, active_db: float) -> np.ndarray:
    """Return a bool per whole frame: its energy is within `active_db` of the loudest frame."""
    n = wave.size // frame
    if n == 0:
        return np.zeros(0, bool)
    frames = wave[: n * frame].astype(np.float64).reshape(n, frame)  # [frames, samples]
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    return db >= db.max() - active_db


def eligible_starts(active: np.ndarray, window_frames: int, min_active: float) -> np.ndarray:
    """Frame indices where a window of `window_frames` frames has >= min_active active frames."""
    if active.size < window_frames or window_frames == 0:
        return np.zeros(0, np.int64)
    c = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
    frac = (c[window_frames:] - c[:-window_frames]) / window_frames  # [starts]
    return np.flatnonzero(frac >= min_active - 1e-9)
