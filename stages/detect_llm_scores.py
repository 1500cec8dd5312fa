"""detect_llm_scores: p(SPEECH) of every clip for one model (base or lora) with the baseline and the OPRO prompt."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import torch
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_csv, write_json
from audioprobe.detect.llm.clips import read_table
from audioprobe.detect.llm.prompt import Prompt, encode_prompt
from audioprobe.detect.llm.scoring import Timings, score
from audioprobe.detect.llm.systems import MODELS, banner_lines, load_clips, load_model, provenance, system_name
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    model: str = typer.Option(..., help="base | lora"),
    base: Path = typer.Option(Path("data/detect/llm/base")),
    adapter: Path = typer.Option(Path("data/detect/llm/adapter")),
    opro: Path = typer.Option(None, help="detect_opro@<model>'s folder, holding opro_<model>.json (default plots/detect/opro/<model>)"),
    clips: Path = typer.Option(Path("data/detect/clips")),
    kept: Path = typer.Option(Path("data/detect/hygiene/clips.parquet")),
    out: Path = typer.Option(Path("data/detect/scores")),
    host: Path = typer.Option(Path("plots/detect/host"), help="gitignored side folder for timings"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    if model not in MODELS:
        raise typer.BadParameter(f"--model must be one of {MODELS}")
    cfg = params.load_group("detect.llm", params_file)
    torch.set_num_threads(cfg.scoring.threads)
    loaded = load_model(model, base, adapter, cfg.model)
    table = read_table(kept).sort("clip_id")  # every split, once: dev for fitting, test for the report
    clipset = load_clips(table, clips, loaded.processor)
    found = json.loads(((opro or Path("plots/detect/opro") / model) / f"opro_{model}.json").read_text())
    prompts = {"baseline": cfg.prompt.user, "opro": found["best_prompt"]}
    n = table.height
    for kind, user in prompts.items():
        name = system_name(model, kind)
        timings = Timings()
        pids = encode_prompt(loaded.processor, Prompt(cfg.prompt.system, user))
        p = score(loaded.model, loaded.processor, pids, clipset.audio, loaded.device, loaded.dtype,
                  cfg.scoring.batch_size, timings=timings)
        with atomic_dir(out / name) as tmp:
            pl.DataFrame({"clip_id": table["clip_id"], "score": pl.Series(p, dtype=pl.Float64)}).write_parquet(
                tmp / "scores.parquet")
            write_json(tmp / "system.json", {
                "system": name, "score_kind": "probability", "model": model, "prompt_kind": kind,
                "prompt": {"system": cfg.prompt.system, "user": user},
                "provenance": provenance(loaded.weights), "weights": loaded.weights,
                "banners": banner_lines(clips, loaded.weights),
            })
        # host timings, amortised per clip over batches of scoring.batch_size (never a DVC output)
        s = timings.seconds
        per = {"load_ms": clipset.load_ms, "features_ms": [1000 * clipset.features_s / n] * n,
               "model_ms": [1000 * (s["batching"] + s["model"]) / n] * n, "post_ms": [1000 * s["post"] / n] * n}
        write_csv(host / f"latency_{name}.csv",
                  pl.DataFrame(per).with_columns(table["clip_id"]).to_dicts())
        total = clipset.load_ms.mean() + 1000 * (clipset.features_s + sum(s.values())) / n
        typer.echo(f"{name}: {n} clips scored ({loaded.device.type}, batch {cfg.scoring.batch_size}); per clip "
                   f"{total:.2f} ms (load {clipset.load_ms.mean():.2f}, features {1000 * clipset.features_s / n:.2f}, "
                   f"batching {1000 * s['batching'] / n:.2f}, model {1000 * s['model'] / n:.2f}, "
                   f"post {1000 * s['post'] / n:.3f}); {n / max(sum(s.values()), 1e-9):.1f} clips/s model throughput")


if __name__ == "__main__":
    run(app)
