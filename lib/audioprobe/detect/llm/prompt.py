"""The A/B prompt through the processor's chat template, tokenised once per prompt.

A conversation is: system text; user turn = the audio, then the user text; assistant
turn = "A" (SPEECH) or "B" (NONSPEECH). The rendered generation prompt is split at the
single audio placeholder, so a clip's ids are `prefix + [audio] * n_audio_tokens +
suffix` — exactly what the processor builds (a test checks it), but without re-running
the audio front-end for every prompt OPRO tries.
"""

from __future__ import annotations

from dataclasses import dataclass

ANSWERS = {"SPEECH": "A", "NONSPEECH": "B"}  # label -> the letter the assistant answers


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str


@dataclass(frozen=True)
class PromptIds:
    """Token ids of one rendered prompt around the audio, and of each answer and what follows it."""

    prefix: list[int]  # up to and including <|audio_bos|>
    suffix: list[int]  # from <|audio_eos|> to the end of "<|im_start|>assistant\n"
    answer: dict[str, list[int]]  # label -> ids of its answer letter
    tail: list[int]  # template after the answer ("<|im_end|>\n"): context, never a target


def messages(prompt: Prompt, answer: str | None = None) -> list[dict]:
    """The chat messages of one clip (audio placeholder first in the user turn)."""
    out = [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": [{"type": "audio", "audio": "clip"}, {"type": "text", "text": prompt.user}]},
    ]
    if answer is not None:
        out.append({"role": "assistant", "content": answer})
    return out


def render(processor, prompt: Prompt) -> str:
    """The generation prompt text (one <|AUDIO|> placeholder), ending where the answer begins."""
    return processor.apply_chat_template(messages(prompt), tokenize=False, add_generation_prompt=True)


def encode_prompt(processor, prompt: Prompt) -> PromptIds:
    """Tokenise a prompt once: ids before/after the audio, each answer's ids, and the template tail."""
    tok = processor.tokenizer
    text = render(processor, prompt)
    parts = text.split(processor.audio_token)
    if len(parts) != 2:
        raise ValueError(f"the chat template must hold one {processor.audio_token}, got {len(parts) - 1}")

    def ids(s: str) -> list[int]:
        return tok(s, add_special_tokens=False)["input_ids"]

    answer: dict[str, list[int]] = {}
    tail: list[int] | None = None
    for label, letter in ANSWERS.items():
        full = processor.apply_chat_template(messages(prompt, letter), tokenize=False, add_generation_prompt=False)
        if not full.startswith(text + letter):
            raise ValueError("the chat template does not put the assistant answer right after the generation prompt")
        answer[label] = ids(letter)
        rest = ids(full[len(text) + len(letter):])
        if tail is not None and rest != tail:
            raise ValueError("the chat template ends the two answers differently")
        tail = rest
    return PromptIds(prefix=ids(parts[0]), suffix=ids(parts[1]), answer=answer, tail=tail or [])
