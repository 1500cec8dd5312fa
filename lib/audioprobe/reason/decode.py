"""Batched greedy decoding on left-padded [prefix | prompt] rows, with or without a KV cache.

Left padding puts every row's last real token in the last column, so the next-token
logits are read there for all rows (right padding would read them at pad positions for
the shorter rows — the origin's bug). Generated tokens are appended as real positions
with position ids continuing each row's own count. A row stops at EOS (not returned) or
after `max_new_tokens`; the loop ends when every row has stopped.
"""

from __future__ import annotations

import torch

from audioprobe.reason.batching import assemble


@torch.inference_mode()
def greedy_decode(lm: torch.nn.Module, prefixes: list[torch.Tensor | None], prompts: list[list[int]],
                  eos_id: int, pad_id: int, max_new_tokens: int, use_cache: bool = True) -> list[list[int]]:
    """Return the generated token ids per row (EOS excluded).

    `use_cache=False` recomputes the whole sequence every step (the origin's decoder);
    it must give the same tokens as the cached path.
    """
    embed = lm.get_input_embeddings()
    batch = assemble(prefixes, prompts, None, embed, pad_id, side="left")
    embeds, mask, pos = batch.inputs_embeds, batch.attention_mask, batch.position_ids
    B = embeds.shape[0]
    # transformers 5 names the KV cache `cache` (was `past_key_values`); logits_to_keep=1
    # computes the LM head for the last column only, in both paths.
    out = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=use_cache, logits_to_keep=1)
    past = out.cache if use_cache else None
    logits = out.logits[:, -1]  # (B, V): the last column is every row's last real token
    done = torch.zeros(B, dtype=torch.bool, device=embeds.device)
    tokens: list[list[int]] = [[] for _ in range(B)]
    for step in range(max_new_tokens):
        nxt = logits.argmax(dim=-1)  # (B,)
        for i in torch.nonzero(~done & (nxt != eos_id)).flatten().tolist():
            tokens[i].append(int(nxt[i]))
        done |= nxt == eos_id
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        new = embed(nxt)[:, None, :]  # (B, 1, d)
        mask = torch.cat([mask, torch.ones(B, 1, dtype=mask.dtype, device=mask.device)], dim=1)
        new_pos = pos[:, -1:] + 1  # (B, 1)
        pos = torch.cat([pos, new_pos], dim=1)
        if use_cache:
            out = lm(inputs_embeds=new, attention_mask=mask, position_ids=new_pos,
                     cache=past, use_cache=True, logits_to_keep=1)
            past = out.cache
        else:
            embeds = torch.cat([embeds, new], dim=1)  # (B, T + 1, d): full recompute next step
            out = lm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=False,
                     logits_to_keep=1)
        logits = out.logits[:, -1]
    return tokens
