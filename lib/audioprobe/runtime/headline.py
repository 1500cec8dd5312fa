"""Headline metrics files: a handful of lane-prefixed numbers plus uniform provenance.

Conventions every lane follows (the tests in tests/unit/test_conventions.py pin them):

- `metrics/<lane>.json` is a flat JSON object with at most MAX_KEYS keys, every key
  starting with `<lane>.`; only headline numbers (a few per lane) live there, so
  `dvc metrics show` and `dvc exp show` stay readable. Detailed tables are plain
  committed outputs under `plots/<lane>/`.
- A key never disappears between runs: a value that is undefined (an excluded
  scheme, a censored threshold) is written as the string status in STATUS, not dropped.
- Provenance uses the same keys in every lane:
  `<lane>.data.<dataset>` = "<source>@<sha256[:12]>" (source: embedded | path | url),
  `<lane>.weights.<component>` = "random-init" | "trained-here@<sha256[:12]>" |
  "<id or path>@<sha256[:12]>", and `<lane>.synthetic` = true when any dataset is the
  embedded synthetic corpus. The full hashes go to `plots/<lane>/provenance.json`, with the
  numeric environment the stage ran under (`numerics`: pinned or native, the kernel ISA).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audioprobe.runtime.atomic import write_json
from audioprobe.runtime.provenance import RANDOM_INIT
from audioprobe.runtime import numerics

MAX_KEYS = 24
SHORT = 12  # hex digits of a sha256 shown in a metrics cell (git-style short hash)
SYNTHETIC_BANNER = "synthetic data: a smoke test, not a finding about speech"
RANDOM_INIT_BANNER = "random-init weights: these numbers say nothing about the pretrained model"
# Status strings for a headline value that cannot be a number.
STATUS = {
    "excluded": "excluded",  # every sample of a scheme fell in clusters below the size floor
    "undefined": "n/a",  # e.g. a t-test on constant differences, a CI from one replica
    "censored_low": "censored-low",  # a threshold below the tested range
    "censored_high": "censored-high",  # a threshold above the tested range
    # a fitted curve that never rises above chance in the tested range: it has no threshold,
    # neither in the range nor just past it (not a censored one)
    "no_rise": "no-rise",
}


def short(sha256: str) -> str:
    """Return the first SHORT hex digits of a sha256 (or the string itself if it is not one)."""
    return sha256[:SHORT] if len(sha256) == 64 else sha256


def data_entry(record: dict[str, Any]) -> str:
    """'<source>@<sha12>' from a download stage's source record {source, sha256, ...}."""
    return f"{record['source']}@{short(str(record['sha256']))}"


def weights_entry(source: str, sha256: str | None) -> str:
    """'random-init', or '<source>@<sha12>' for weights read from a file or trained here."""
    if source == RANDOM_INIT or sha256 is None:
        return RANDOM_INIT
    return f"{source}@{short(sha256)}"


def banners(data: dict[str, dict[str, Any]], weights: dict[str, dict[str, Any]]) -> list[str]:
    """The warning lines a report, plot title and metrics file must carry for these inputs."""
    out = []
    if any(rec.get("source") == "embedded" for rec in data.values()):
        out.append(SYNTHETIC_BANNER)
    if any(rec.get("source") == RANDOM_INIT for rec in weights.values()):
        out.append(RANDOM_INIT_BANNER)
    return out


def headline(
    lane: str,
    values: dict[str, Any],
    data: dict[str, dict[str, Any]],
    weights: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the flat headline dict: `values` prefixed with `<lane>.` plus provenance keys.

    `data` maps dataset name -> {source, sha256}; `weights` maps component ->
    {source, sha256} (source 'random-init' for random weights). Raises ValueError when
    the result would hold more than MAX_KEYS keys or a value is not a JSON scalar.
    """
    weights = weights or {}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise ValueError(f"{lane}.{key}: headline values are scalars, got {type(value).__name__}")
        out[f"{lane}.{key}"] = value
    for name, rec in sorted(data.items()):
        out[f"{lane}.data.{name}"] = data_entry(rec)
    for name, rec in sorted(weights.items()):
        out[f"{lane}.weights.{name}"] = weights_entry(str(rec["source"]), rec.get("sha256"))
    out[f"{lane}.synthetic"] = any(rec.get("source") == "embedded" for rec in data.values())
    if len(out) > MAX_KEYS:
        raise ValueError(f"metrics/{lane}.json would hold {len(out)} keys (max {MAX_KEYS}): move detail to plots/{lane}/")
    return out


def write_headline(
    path: str | Path,
    lane: str,
    values: dict[str, Any],
    data: dict[str, dict[str, Any]],
    weights: dict[str, dict[str, Any]] | None = None,
    provenance_path: str | Path | None = None,
) -> dict[str, Any]:
    """Write `headline(...)` to `path` atomically; with `provenance_path`, also the full hashes."""
    out = headline(lane, values, data, weights)
    if provenance_path is not None:
        write_json(provenance_path, {"data": data, "weights": weights or {}, "banners": banners(data, weights or {}),
                                     "numerics": numerics.record()})
    write_json(path, out)
    return out
