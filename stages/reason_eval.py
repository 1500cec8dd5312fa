"""reason_eval: answer the test split with every arm; metrics, CIs, paired tests, tables, figure."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer
from safetensors.torch import load_file

from audioprobe.runtime import params
from audioprobe.runtime.atomic import write_csv, write_text
from audioprobe.data.layout import dataset_root, read_source
from audioprobe.data.reasonaqa import load_split
from audioprobe.runtime.headline import MAX_KEYS, banners, write_headline
from audioprobe.reason import lm as lmlib
from audioprobe.reason.arms import BLIND_DIM, arm_clips, arm_encoder
from audioprobe.reason.evaluate import (
    by_type,
    check_split,
    decode_budget,
    headline_values,
    majority_answers,
    majority_scores,
    paired,
    paired_by_type,
    predict,
    score_rows,
)
from audioprobe.reason.features import read_features
from audioprobe.reason.figures import accuracy_by_type
from audioprobe.reason.mapper import AudioMapper
from audioprobe.reason.report import arm_labels, examples_markdown, report_markdown, weights_records
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw/reasonaqa")),
    features: Path = typer.Option(Path("data/reason/features")),
    lm_dir: Path = typer.Option(Path("data/reason/lm")),
    runs: Path = typer.Option(Path("data/reason/runs")),
    metrics: Path = typer.Option(Path("metrics/reason.json")),
    plots: Path = typer.Option(Path("plots/reason/eval")),
    seed: int = typer.Option(42),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("reason.eval", params_file)
    arms = params.load_group("reason.train", params_file).arms
    check_split(cfg.split)  # before anything is loaded
    torch.set_num_threads(cfg.threads)
    lm_rec = json.loads((lm_dir / "lm.json").read_text())
    model, tok = lmlib.load_frozen_lm(lmlib.resolve_lm(lm_rec["name"], lm_dir))
    root = dataset_root(raw, params_file)
    source = read_source(raw)
    rows = load_split(root, cfg.split)
    budget, need = decode_budget(tok, rows, cfg.max_new_tokens, cfg.split)
    typer.echo(f"reason_eval: decoding budget {budget} new tokens (the longest {cfg.split} gold answer needs {need} "
               f"with its EOS; reason.eval.max_new_tokens = {cfg.max_new_tokens})")
    majority = majority_scores(rows, majority_answers(load_split(root, "train")))
    feats_cache: dict[str, tuple] = {}
    preds, scores, cut, enc_prov = {}, {}, {}, {}
    for arm in arms:
        enc = arm_encoder(arm)
        if enc and enc not in feats_cache:
            feats_cache[enc] = read_features(features / enc)
        feats, meta = feats_cache[enc] if enc else (None, {"dim": BLIND_DIM, "provenance": {"name": "none"}})
        if enc:
            enc_prov[enc] = meta["provenance"]
        mapper = AudioMapper(int(meta["dim"]), model.config.hidden_size)
        mapper.load_state_dict(load_file(str(runs / arm / "mapper.safetensors")))
        inputs = arm_clips(arm, rows, feats, seed, cfg.split)
        preds[arm], cut[arm] = predict(model, tok, mapper, rows, inputs, cfg.batch_size, budget)
        scores[arm] = score_rows(rows, preds[arm], cut[arm])
        em = sum(s["em"] for s in scores[arm]) / len(rows)
        label = arm_labels({arm: enc}, enc_prov)[arm]  # `htsat (random-init)` when its weights are random
        typer.echo(f"reason_eval: {label} exact match {em:.3f} on {len(rows)} {cfg.split} rows; "
                   f"{sum(cut[arm])} answers cut at the budget")
    table = by_type(scores, cfg.bootstrap, seed)
    baseline = [r | {"arm": "majority"} for r in by_type({"majority": majority}, cfg.bootstrap, seed)
                if r["metric"] == "em"]
    pairs = paired(scores, cfg.bootstrap, seed)
    type_pairs = paired_by_type(scores, cfg.bootstrap, seed)
    decode = {"budget": budget, "need": need, "cut": {a: sum(cut[a]) for a in arms}}
    data = {"reasonaqa": {"source": str(source["source"]), "sha256": str(source["sha256"])}}
    weights = weights_records(lm_rec, enc_prov)
    notes = banners(data, weights)
    n_prov = len(data) + len(weights) + 1
    values = headline_values(arms, table, pairs, MAX_KEYS - n_prov, decode)
    plots.mkdir(parents=True, exist_ok=True)
    write_csv(plots / "by_type.csv", table + baseline)
    write_csv(plots / "paired.csv", pairs)
    write_csv(plots / "paired_by_type.csv", type_pairs)
    write_csv(plots / "predictions.csv", [
        {"row": i, "taskname": r["taskname"], "subtype": r["subtype"], "question": r["input"], "gold": r["answer"],
         **{f"{a}": preds[a][i] for a in arms}, **{f"{a}_cut": int(cut[a][i]) for a in arms}}
        for i, r in enumerate(rows)])
    labels = arm_labels({a: arm_encoder(a) for a in arms}, enc_prov)
    write_text(plots / "examples.md", examples_markdown(rows, preds, scores, cfg.examples, notes, labels))
    write_text(plots / "report.md", report_markdown(arms, table, pairs, lm_rec, enc_prov, notes, len(rows),
                                                    baseline=baseline, type_pairs=type_pairs, decode=decode,
                                                    labels=labels))
    accuracy_by_type(table + baseline, arms, plots / "accuracy_by_type.png", notes, labels=labels)
    write_headline(metrics, "reason", values, data=data, weights=weights,
                   provenance_path=plots / "provenance.json")
    typer.echo(f"reason_eval: {metrics}, tables and figure under {plots}")


if __name__ == "__main__":
    run(app)
