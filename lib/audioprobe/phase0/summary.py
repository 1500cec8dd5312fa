"""Flatten phase0 results into DVC metrics keys and table rows; latents provenance."""

from __future__ import annotations

from typing import Any

from audioprobe.provenance import RANDOM_INIT

TABLE_METRICS = (
    "n", "n_included", "excluded_mass", "excluded_flag", "vr", "vr_train_means", "random_vr",
    "random_vr_train_means", "random_vr_expected", "degradation", "degradation_train_means", "entropy_h",
    "entropy_h_cond", "entropy_reduction", "entropy_reduction_nats", "n_speakers", "speaker_vr_mean", "speaker_vr_std",
    "speaker_vr_train_means_mean", "speaker_vr_train_means_std",
)


def flatten(prefix: str, tree: Any, out: dict | None = None) -> dict[str, Any]:
    """Return {dotted key: leaf}, dropping None leaves (metrics JSON holds no nulls/NaN)."""
    out = {} if out is None else out
    if isinstance(tree, dict):
        for k, v in tree.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif tree is not None:
        out[prefix] = tree
    return out


def table_rows(lag: int, metrics: dict) -> list[dict]:
    """Return one row per scheme × split × slice with the TABLE_METRICS columns (None = blank)."""
    rows = []
    for scheme, m in metrics.items():
        for split, per_slice in m.items():
            if not isinstance(per_slice, dict):
                continue
            for sl, vals in per_slice.items():
                rows.append({"lag": lag, "scheme": scheme, "split": split, "slice": sl,
                             **{k: vals.get(k) for k in TABLE_METRICS}})
    return rows


def latents_provenance(attrs: dict) -> dict[str, Any]:
    """Return flat `latents.*` provenance from the latents.zarr attrs (encoder, weights, data)."""
    prov = dict(attrs.get("provenance", {}))
    out: dict[str, Any] = {
        "latents.encoder": str(attrs.get("encoder", prov.get("name", "unknown"))),
        "latents.dim": int(attrs.get("dim", 0)),
        "latents.frame_rate": float(attrs.get("frame_rate", 0.0)),
        "latents.hop": int(attrs.get("hop", 0)),
        "latents.sample_rate": int(attrs.get("sample_rate", 0)),
    }
    out.update({f"latents.provenance.{k}": str(v) for k, v in prov.items()})
    out.update({f"latents.data.{k}": str(v) for k, v in dict(attrs.get("data", {})).items()})
    out["latents.random_init"] = is_random_init(attrs)
    return out


def is_random_init(attrs: dict) -> bool:
    """True when the encoder that made the latents had random (untrained) weights."""
    return str(dict(attrs.get("provenance", {})).get("weights", "")) == RANDOM_INIT
