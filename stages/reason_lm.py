"""reason_lm: train the embedded tiny LM (train-split text, then train-split audio prefixes), or record the real LM."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_json
from audioprobe.data.layout import dataset_root
from audioprobe.data.reasonaqa import load_split, split_clips
from audioprobe.reason import lm as lmlib
from audioprobe.reason.arms import arm_clips, input_stats
from audioprobe.reason.features import read_features
from audioprobe.reason.mapper import AudioMapper
from audioprobe.reason.training import ArmBatches, train_prefix_lm
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw/reasonaqa"), help="data_download@reasonaqa output"),
    out: Path = typer.Option(Path("data/reason/lm"), help="folder for the embedded LM (or the real LM's record)"),
    features: Path = typer.Option(Path("data/reason/features"), help="reason_encode outputs (the front end's)"),
    seed: int = typer.Option(42),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("reason", params_file).lm  # the whole group: front_end must be an encoded encoder
    with atomic_dir(out) as tmp:
        if cfg.name != lmlib.EMBEDDED:
            folder = lmlib.resolve_lm(cfg.name, out)
            prov = lmlib.lm_provenance(cfg.name, folder)
            write_json(tmp / "lm.json", prov)
            typer.echo(f"reason_lm: real LM {cfg.name} (sha256 {prov['sha256'][:12]}), frozen; nothing trained")
            return
        torch.set_num_threads(cfg.threads)
        rows = load_split(dataset_root(raw, params_file), "train")
        texts = [lmlib.context_line(r) + lmlib.prompt_text(r["input"]) + " " + r["answer"] for r in rows]
        tok = lmlib.build_tokenizer(texts, cfg.vocab_size)
        torch.manual_seed(seed)
        model = lmlib.tiny_llama(tok, cfg)
        seqs = lmlib.text_sequences(tok, rows, cfg.context_fraction, seed)
        losses = lmlib.train_text_lm(model, seqs, tok.pad_token_id, cfg.steps, cfg.batch_size, cfg.lr, seed)
        audio = {"front_end": "none", "audio_steps": 0}
        if cfg.audio_steps:
            # train-split clips only: a val/test clip is not even loaded
            feats, meta = read_features(features / cfg.front_end, only=split_clips(rows))
            inputs = arm_clips(cfg.front_end, rows, feats, seed, "train")
            torch.manual_seed(seed + 1)
            front = AudioMapper(int(meta["dim"]), model.config.hidden_size)
            front.set_norm(*input_stats(inputs))
            heard = train_prefix_lm(model, front, ArmBatches(tok, rows, inputs), tok.pad_token_id, cfg.audio_steps,
                                    cfg.batch_size, cfg.lr, seed + 1)
            audio = {"front_end": cfg.front_end, "audio_steps": cfg.audio_steps, "audio_clips": len(feats),
                     "audio_first_loss": round(heard[0], 4), "audio_final_loss": round(heard[-1], 4)}
        model.requires_grad_(False)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        prov = lmlib.lm_provenance(lmlib.EMBEDDED, tmp)
        n_params = sum(p.numel() for p in model.parameters())
        write_json(tmp / "lm.json", {**prov, "params": n_params, "train_rows": len(rows),
                                     "first_loss": round(losses[0], 4), "final_loss": round(losses[-1], 4), **audio})
        heard_line = (f"; then {cfg.audio_steps} steps with {cfg.front_end} audio prefixes of {audio['audio_clips']} "
                      f"train clips, answer loss {audio['audio_first_loss']:.3f} -> {audio['audio_final_loss']:.3f}"
                      if cfg.audio_steps else "; text only")
        typer.echo(f"reason_lm: embedded Llama {n_params / 1e6:.2f} M params, {len(rows)} train rows, "
                   f"text loss {losses[0]:.3f} -> {losses[-1]:.3f}{heard_line}")


if __name__ == "__main__":
    run(app)
