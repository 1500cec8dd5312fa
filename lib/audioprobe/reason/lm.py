"""The frozen LM: resolve it offline, or build + train the embedded tiny Llama; load it frozen.

Both paths end in `load_frozen_lm`, which calls `from_pretrained` on a folder (the
embedded LM saved by reason_lm, a local copy, or a hub snapshot already in the local
Hugging Face cache) and freezes every weight. Nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from audioprobe.runtime.errors import WeightsError
from audioprobe.runtime.provenance import sha256_file, sha256_tree
from audioprobe.reason.batching import answer_ids, prompt_ids, prompt_text

EMBEDDED = "embedded"
EOS = "<|endoftext|>"
PAD = "<|pad|>"


def resolve_lm(name: str, embedded_dir: str | Path, param: str = "reason.lm.name") -> Path:
    """Return the local folder of the LM `name` ('embedded' -> embedded_dir); WeightsError if absent offline."""
    if name == EMBEDDED:
        path = Path(embedded_dir)
        if not (path / "config.json").is_file():
            raise WeightsError(f"{path}: no embedded LM saved there; run `dvc repro reason_lm` first")
        return path
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsError(f"params.yaml: {param} = {name!r}: folder has no config.json (not a save_pretrained LM)")
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, a malformed id
        raise WeightsError(
            f"params.yaml: {param} = {name!r}: not a local folder and not in the local Hugging Face "
            f"cache (nothing is downloaded); run `hf download {name}` on a machine with internet, or "
            f"set {param}: embedded"
        ) from None


def lm_provenance(name: str, folder: Path) -> dict[str, str]:
    """Return {source, sha256, ...} of an LM folder: the weights file's hash (or the tree's)."""
    weights = sorted(folder.glob("*.safetensors"))
    sha = sha256_file(weights[0]) if len(weights) == 1 else sha256_tree(folder)
    source = "trained-here" if name == EMBEDDED else name
    return {"source": source, "sha256": sha, "name": name}


def _not_loadable(folder: Path, exc: Exception) -> WeightsError:
    """One line for a folder transformers cannot load (its own error is a long traceback)."""
    text = str(exc).strip()
    first = text.splitlines()[0][:200] if text else ""
    return WeightsError(f"{folder}: not a loadable causal LM + tokenizer ({type(exc).__name__}: {first}); point "
                        "reason.lm.name at a save_pretrained folder, a hub id in the local cache, or embedded")


def load_frozen_lm(folder: str | Path) -> tuple[torch.nn.Module, object]:
    """Return (causal LM in eval mode with requires_grad False everywhere, tokenizer) from a folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    try:
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a junk config.json, no tokenizer files
        raise _not_loadable(folder, exc) from None
    if tok.eos_token_id is None:
        raise WeightsError(f"{folder}: the tokenizer has no EOS token; answers must end with one")
    if tok.pad_token_id is None:  # pad positions are masked out; any id will do
        tok.pad_token = tok.eos_token
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # missing or foreign weights
        raise _not_loadable(folder, exc) from None
    model.eval().requires_grad_(False)
    return model, tok


def build_tokenizer(texts: list[str], vocab_size: int):
    """Return a byte-level BPE PreTrainedTokenizerFast trained on `texts`, with EOS and pad tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=PAD)


def tiny_llama(tok, cfg) -> torch.nn.Module:
    """Return a random SmolLM2-shaped Llama (tied embeddings) sized by params `reason.lm`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=2048, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id,
    )
    return LlamaForCausalLM(config)


def context_line(row: dict) -> str:
    """Return the caption context line of a row: 'caption1[; caption2]\\n'."""
    return row["caption1"] + ("; " + row["caption2"] if row["caption2"] else "") + "\n"


def text_sequences(tok, rows: list[dict], context_fraction: float = 0.0, seed: int = 0) -> list[list[int]]:
    """Return `[context line]Question: {q}\\nAnswer: {a}<eos>` token ids per row.

    The prompt and the answer are tokenised exactly as in mapper training and decoding.
    A seeded `context_fraction` of the rows get their clips' captions as a text line in
    front: that is where the audio prefix sits later, so the LM learns to read a prefix.
    """
    rng = np.random.default_rng(seed)
    out = []
    for r in rows:
        ctx = list(tok(context_line(r), add_special_tokens=False)["input_ids"]) if rng.random() < context_fraction else []
        out.append(ctx + prompt_ids(tok, r["input"]) + answer_ids(tok, r["answer"]))
    return out


def train_text_lm(model: torch.nn.Module, seqs: list[list[int]], pad_id: int, steps: int,
                  batch_size: int, lr: float, seed: int) -> list[float]:
    """Train `model` on the token sequences (next-token loss on every real token); return the loss per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    model.train()
    losses = []
    for _ in range(steps):
        pick = torch.randint(len(seqs), (batch_size,), generator=gen).tolist()
        batch = [seqs[i] for i in pick]
        width = max(len(s) for s in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # (B, T) right-padded
        mask = torch.zeros_like(ids)
        for i, s in enumerate(batch):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


__all__ = ["EMBEDDED", "build_tokenizer", "context_line", "load_frozen_lm", "lm_provenance", "prompt_text", "resolve_lm",
           "text_sequences", "tiny_llama", "train_text_lm"]
