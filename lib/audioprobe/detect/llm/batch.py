"""Audio features computed once per clip, and left-padded batches (with answer-only labels for training).

`AudioFeatures` holds the processor's front-end output for every clip (log-mel padded to
the front-end's chunk, its frame mask, and how many <|AUDIO|> tokens the clip becomes).
`build_batch` joins them with a `PromptIds`: row i = pad... + prefix + audio*n_i + suffix
[+ answer + tail], left-padded so the last position of every row is the last prompt
token (scoring) and the answer sits at the same place in every row (training).
Labels are -100 everywhere except the answer token(s): the loss never trains the prompt,
the audio placeholders, the template after the answer, or padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audioprobe.detect.llm.prompt import PromptIds

IGNORE = -100  # label value cross-entropy skips


@dataclass
class AudioFeatures:
    features: torch.Tensor  # [N, mel, T] float32
    mask: torch.Tensor  # [N, T] int64: 1 on the clip's frames, 0 on the padding
    n_tokens: np.ndarray  # [N] audio tokens each clip is expanded into

    def __len__(self) -> int:
        return int(self.features.shape[0])


def audio_tokens(n_frames: np.ndarray) -> np.ndarray:
    """Audio tokens per clip after Qwen2-Audio's stride-2 conv and stride-2 pooling (the processor's formula)."""
    n_frames = np.asarray(n_frames, dtype=np.int64)
    return (((n_frames - 1) // 2 + 1) - 2) // 2 + 1


def extract(processor, waves: list[np.ndarray], sr: int, chunk: int = 64) -> AudioFeatures:
    """Run the processor's feature extractor over every clip (as the processor does: padded to max_length)."""
    fe = processor.feature_extractor
    feats, masks = [], []
    for i in range(0, len(waves), chunk):
        out = fe(waves[i : i + chunk], sampling_rate=sr, padding="max_length", return_attention_mask=True,
                 return_tensors="pt")
        feats.append(out["input_features"].float())
        masks.append(out["attention_mask"].long())
    mask = torch.cat(masks)
    return AudioFeatures(torch.cat(feats), mask, audio_tokens(mask.sum(-1).numpy()))


def build_batch(
    pids: PromptIds,
    audio: AudioFeatures,
    idx: list[int] | np.ndarray,
    audio_id: int,
    pad_id: int,
    labels: list[str] | None = None,
    features: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Model inputs for clips `idx`; with `labels` ('SPEECH'/'NONSPEECH') the answer, tail and loss labels too.

    `features` replaces audio.features[idx] (training passes augmented features).
    """
    rows, targets = [], []
    for j, i in enumerate(idx):
        ids = pids.prefix + [audio_id] * int(audio.n_tokens[i]) + pids.suffix
        lab = [IGNORE] * len(ids)
        if labels is not None:
            ans = pids.answer[labels[j]]
            ids = ids + ans + pids.tail
            lab = lab + ans + [IGNORE] * len(pids.tail)
        rows.append(ids)
        targets.append(lab)
    out = left_pad(rows, targets, pad_id)
    label_t = out.pop("labels")
    sel = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    out["input_features"] = audio.features[sel] if features is None else features
    out["feature_attention_mask"] = audio.mask[sel]
    if labels is not None:
        out["labels"] = label_t
    return out


def left_pad(rows: list[list[int]], labels: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad token rows to one width: input_ids, attention_mask, position_ids and labels (IGNORE on pads).

    Positions count real tokens only, so a left-padded row sees the positions it would alone.
    """
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    label_t = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for r, (ids, lab) in enumerate(zip(rows, labels)):
        input_ids[r, width - len(ids):] = torch.tensor(ids)
        attention[r, width - len(ids):] = 1
        label_t[r, width - len(ids):] = torch.tensor(lab)
    return {"input_ids": input_ids, "attention_mask": attention,
            "position_ids": (attention.cumsum(-1) - 1).clamp(min=0), "labels": label_t}
