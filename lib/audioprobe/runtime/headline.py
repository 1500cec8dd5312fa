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
- Charts: a Vega chart of `dvc plots show` cannot take its banner from params (a title
  interpolates params, not provenance), so every plotted CSV/TSV carries a BANNER_FIELD
  column from provenance (`banner_text`, written by `with_banner` or `add_banner_column`)
  and every Vega template draws it above the chart, one line per revision
  (lib/audioprobe/vega/banner_view.json); empty = real data and weights, no line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from audioprobe.runtime.atomic import write_json, write_text
from audioprobe.runtime.provenance import RANDOM_INIT
from audioprobe.runtime import numerics

MAX_KEYS = 24
SHORT = 12  # hex digits of a sha256 shown in a metrics cell (git-style short hash)
SYNTHETIC_BANNER = "synthetic data: a smoke test, not a finding about speech"
RANDOM_INIT_BANNER = "random-init weights: these numbers say nothing about the pretrained model"
BANNER_FIELD = "banner"  # the column of a plotted table that every Vega template draws
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


def banner_text(data: dict[str, dict[str, Any]], weights: dict[str, dict[str, Any]] | None = None) -> str:
    """The chart banner of these inputs, '' for real data and weights: the synthetic-data line when a
    dataset is embedded, and the random-init line naming the components with random weights."""
    weights = weights or {}
    out = [SYNTHETIC_BANNER] if any(rec.get("source") == "embedded" for rec in data.values()) else []
    rnd = sorted(k for k, rec in weights.items() if rec.get("source") == RANDOM_INIT)
    if rnd:
        out.append(f"{RANDOM_INIT_BANNER} ({', '.join(rnd)})")
    return "; ".join(out)


def with_banner(rows: list[dict[str, Any]], banner: str) -> list[dict[str, Any]]:
    """`rows` with the BANNER_FIELD column (last) set to `banner` in every row."""
    return [{**{k: v for k, v in r.items() if k != BANNER_FIELD}, BANNER_FIELD: banner} for r in rows]


def is_random_init(name: str, weights: dict[str, dict[str, Any]]) -> bool:
    return weights.get(name, {}).get("source") == RANDOM_INIT


def labelled(name: str, weights: dict[str, dict[str, Any]]) -> str:
    """A table, legend or console label: `name`, or `name (random-init)` when its weights are random."""
    return f"{name} ({RANDOM_INIT})" if is_random_init(name, weights) else name


def with_row_banners(rows: list[dict[str, Any]], data: dict[str, dict[str, Any]],
                     weights: dict[str, dict[str, Any]], key: str, label: str | None = None) -> list[dict[str, Any]]:
    """`rows` with a BANNER_FIELD per row: the data's banner on every row, the random-init line only on
    rows whose component `row[key]` (an encoder, an arm) has random weights; with `label`, that
    column of such a row (the chart's legend) also says `(random-init)`."""
    out = []
    for r in rows:
        comp = r.get(key)
        own = {comp: weights[comp]} if comp in weights else {}
        row = {k: v for k, v in r.items() if k != BANNER_FIELD}
        if label is not None and is_random_init(comp, weights):
            row[label] = f"{row[label]} ({RANDOM_INIT})"
        out.append({**row, BANNER_FIELD: banner_text(data, own)})
    return out


def add_banner_column(path: str | Path, banner: str) -> list[Path]:
    """Add (or replace) the BANNER_FIELD column of a plotted CSV/TSV file, or of every .csv/.tsv
    under a folder (a dvclive run folder: `plots/metrics/<metric>.tsv`); returns the files changed.

    The other columns and rows are kept byte for byte (delimiter from the extension, line ends as
    found), so a curve written by dvclive stays what dvclive wrote, plus the banner.
    """
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.suffix in (".csv", ".tsv")) if path.is_dir() else [path]
    for f in files:
        with open(f, newline="") as fh:
            text = fh.read()
        if not text:
            continue
        delim = "\t" if f.suffix == ".tsv" else ","
        end = "\r\n" if "\r\n" in text else "\n"
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))
        header = rows[0]
        keep = [i for i, name in enumerate(header) if name != BANNER_FIELD]
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=delim, lineterminator=end)
        w.writerow([header[i] for i in keep] + [BANNER_FIELD])
        for r in rows[1:]:
            w.writerow([r[i] for i in keep] + [banner])
        write_text(f, buf.getvalue())
    return files


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
