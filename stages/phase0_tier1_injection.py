"""tier1_injection: roll out each representation's k = 1 models in modes A–D (lane README, "Tier 1").

Writes plots/phase0/tier1_injection/injection.csv: one row per model × representation × mode × step
(ΔNLL per dim, cosine, magnitude ratio, state error ÷ median train |Δx|; mean and median
over the same rollouts for every model) with injection_resets = full_window.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import write_csv
from audioprobe.runtime.errors import DataError, ParamsError
from audioprobe.runtime.headline import with_row_banners
from audioprobe.phase0.tier1.compare import provenance
from audioprobe.phase0.tier1.figures import csv_ready, step_chart_rows
from audioprobe.phase0.tier1.pipeline import injection_utterances, prepare, run_injection
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    latents: Path = typer.Option(Path("data/phase0/tier1/latents"), help="tier1_latents root (<encoder>/...)"),
    splits: Path = typer.Option(Path("data/phase0/splits"), help="speaker_split output"),
    vmf: Path = typer.Option(Path("data/phase0/tier1/vmf"), help="tier1_vmf checkpoints"),
    mdn: Path = typer.Option(Path("data/phase0/tier1/mdn"), help="tier1_mdn checkpoints"),
    out: Path = typer.Option(Path("plots/phase0/tier1_injection/injection.csv"), help="per-step table"),
    seed: int = typer.Option(0, help="global seed (draws the utterances)"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("phase0.tier1", params_file)
    inj = cfg.injection
    if 1 not in cfg.lags:
        raise ParamsError("params.yaml: phase0.tier1.lags must include 1 (tier1_injection rolls out the k = 1 models)")
    reps, split, device = prepare(cfg, latents, splits, seed)
    utts = injection_utterances(reps, split, inj.utterances, cfg.window, inj.steps, seed)
    if not utts:
        raise DataError(f"tier1_injection: no eval utterance has window + steps = {cfg.window + inj.steps} frames "
                        "in every representation; lower phase0.tier1.injection.steps")
    rows = run_injection(reps, {"vmf": vmf, "mdn": mdn}, utts, n_starts=inj.starts, steps=inj.steps,
                         inject_every=inj.inject_every, device=device)
    evals = []
    for fit in (vmf, mdn):
        if not (fit / "eval.json").is_file():
            raise DataError(f"{fit / 'eval.json'} is missing; run `dvc repro phase0_tier1_fit@{fit.name}`")
        evals.append(json.loads((fit / "eval.json").read_text()))
    data, weights, _ = provenance(evals)  # the chart's banner per row (random-init only on a random encoder)
    write_csv(out, csv_ready(with_row_banners(step_chart_rows(rows), data, weights, "encoder", "series")))
    typer.echo(f"tier1_injection: {len(utts)} utterances x {inj.starts} starts x {inj.steps} steps, "
               f"{len(rows)} rows -> {out}")


if __name__ == "__main__":
    run(app)
