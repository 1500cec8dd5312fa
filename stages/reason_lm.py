"""reason_lm: train the embedded tiny LM on train-split text, or record the real LM's provenance."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from audioprobe.runtime import params
from audioprobe.runtime.atomic import atomic_dir, write_json
from audioprobe.data.layout import dataset_root
from audioprobe.data.reasonaqa import load_split
from audioprobe.reason import lm as lmlib
from stages._run import run

app = typer.Typer(add_completion=False)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw/reasonaqa"), help="data_download@reasonaqa output"),
    out: Path = typer.Option(Path("data/reason/lm"), help="folder for the embedded LM (or the real LM's record)"),
    seed: int = typer.Option(42),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("reason.lm", params_file)
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
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        prov = lmlib.lm_provenance(lmlib.EMBEDDED, tmp)
        n_params = sum(p.numel() for p in model.parameters())
        write_json(tmp / "lm.json", {**prov, "params": n_params, "train_rows": len(rows),
                                     "first_loss": round(losses[0], 4), "final_loss": round(losses[-1], 4)})
        typer.echo(f"reason_lm: embedded Llama {n_params / 1e6:.2f} M params, {len(rows)} train rows, "
                   f"text loss {losses[0]:.3f} -> {losses[-1]:.3f}")


if __name__ == "__main__":
    run(app)
