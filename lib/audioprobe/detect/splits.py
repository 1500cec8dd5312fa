"""Split source groups (speakers, recordings, files) into train/dev/test with no group in two splits."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "dev", "test")


def split_counts(n: int, fractions: list[float]) -> list[int]:
    """Return counts per split summing to n (largest remainder); every split >= 1 when n >= 3."""
    raw = [n * f for f in fractions]
    out = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))[: n - sum(out)]:
        out[i] += 1
    if n >= len(fractions):
        for i in range(len(out)):
            while out[i] == 0:
                j = max(range(len(out)), key=lambda j: out[j])
                out[j] -= 1
                out[i] += 1
    return out


def assign_groups(groups: list[str], fractions: list[float], seed: int) -> dict[str, str]:
    """Return {group: split}: groups ordered by a seeded hash, cut at the split fractions."""
    order = sorted(set(groups), key=lambda g: hashlib.sha1(f"{seed}:{g}".encode()).hexdigest())
    counts = split_counts(len(order), fractions)
    out, i = {}, 0
    for split, n in zip(SPLITS, counts):
        for g in order[i : i + n]:
            out[g] = split
        i += n
    return out
