"""OPRO prompt search on dev: a scored history, an optimiser proposing new prompts from its best entries.

Reward of a prompt (the origin's): R = BA_clip + cond_weight * BA_cond - len_weight * len / 100,
where BA_clip is the balanced accuracy over dev clips at p(SPEECH) >= 0.5, BA_cond the
unweighted mean over conditions (duration x SNR cells) of the balanced accuracy within
each, and len the prompt's length in characters. The search starts from the origin's five
hand-written prompts; each iteration shows the optimiser the top_k history entries and
asks for `candidates` new prompts; a candidate must still offer the A/B choice (it names
both "A" and "B") or it is dropped. The search stops after `iterations` or when the best
reward has not improved for `patience` iterations. Only dev clips are ever scored here.

Optimisers:
- `edit`: seeded edits of a top-k parent over a bank of phrases (lead line, option
  wording, closing line, a focus hint): a search baseline that needs no second model.
- `llm`: any causal LM with a chat template (origin: Qwen2.5-7B-Instruct, T = 0.7), given
  the OPRO meta-prompt (scored prompts in ascending order, asked for a better one in
  <PROMPT>...</PROMPT>).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from audioprobe.detect.llm.params import SEED_PROMPTS, LlmOpro

MAX_CHARS = 600


@dataclass(frozen=True)
class Entry:
    iteration: int
    prompt: str
    ba_clip: float
    ba_cond: float
    length: int
    reward: float
    origin: str  # seed | edit | llm


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean recall over the classes present in y (pred, y: 0/1)."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1) if np.any(y == c)]))


def reward(p: np.ndarray, y: np.ndarray, cond: np.ndarray, prompt: str, cfg: LlmOpro) -> dict[str, float]:
    """{ba_clip, ba_cond, length, reward} of one prompt's dev scores p (y: 1 = SPEECH; cond: condition ids)."""
    pred = (np.asarray(p) >= 0.5).astype(int)
    ba_clip = balanced_accuracy(pred, y)
    ba_cond = float(np.mean([balanced_accuracy(pred[cond == c], y[cond == c]) for c in np.unique(cond)]))
    n = len(prompt)
    return {"ba_clip": ba_clip, "ba_cond": ba_cond, "length": n,
            "reward": ba_clip + cfg.cond_weight * ba_cond - cfg.len_weight * n / 100}


def valid(prompt: str) -> bool:
    """A usable candidate: non-empty, at most MAX_CHARS, and still naming both answer letters."""
    names_both = bool(re.search(r"\bA\b", prompt)) and bool(re.search(r"\bB\b", prompt))
    return 0 < len(prompt.strip()) <= MAX_CHARS and names_both


def top(history: list[Entry], k: int) -> list[Entry]:
    """The k best entries, best first (ties: the earlier entry)."""
    return sorted(history, key=lambda e: -e.reward)[:k]


# ---- edit optimiser ------------------------------------------------------------------

LEADS = [
    "Listen to the audio clip.", "Listen carefully to this short audio clip.", "Does this clip contain human speech?",
    "Is a person talking in this audio?", "Task: decide whether the audio holds human speech.",
    "Focus on whether you hear a human voice saying words.", "Classify the audio: speech or not speech?",
]
OPTIONS = [
    ("A) SPEECH (human voice)", "B) NONSPEECH (music/noise/silence/animals)"),
    ("A) Yes, human speech", "B) No human speech"),
    ("A) SPEECH", "B) NONSPEECH"),
    ("A) a person is talking", "B) no one is talking (music, noise, animals or silence)"),
    ("A = human voice", "B = anything else"),
]
CLOSINGS = ["Answer with A or B ONLY.", "Answer:", "Your answer (A or B):", "Reply with one letter.", "Select:"]
HINTS = [
    "Even a short or noisy word counts as speech.", "Animal calls and singing-like music are not speech.",
    "Ignore background noise.", "The clip may be very short.",
]


def _structure(prompt: str) -> tuple[list[str], tuple[str, str], str]:
    """Split a prompt into (lead lines, (option A line, option B line), closing line) as far as it has them."""
    lines = [ln for ln in prompt.split("\n") if ln.strip()]
    a = next((ln for ln in lines if re.match(r"^\s*A\s*[)=:.]", ln)), "A) SPEECH")
    b = next((ln for ln in lines if re.match(r"^\s*B\s*[)=:.]", ln)), "B) NONSPEECH")
    rest = [ln for ln in lines if ln not in (a, b)]
    after = lines.index(b) + 1 if b in lines else len(lines)
    closing = next((ln for ln in lines[after:] if ln in rest), "Answer with A or B ONLY.")
    lead = [ln for ln in rest if ln != closing]
    return lead, (a, b), closing


def _join(lead: list[str], opts: tuple[str, str], closing: str) -> str:
    return "\n\n".join([*(["\n".join(lead)] if lead else []), "\n".join(opts), closing])


class EditOptimizer:
    """Seeded edits of a parent drawn from the top-k history (better ranks drawn more often)."""

    name = "edit"

    def __init__(self, seed: int):
        self.rng = np.random.default_rng([seed, 3])

    def propose(self, best: list[Entry], n: int) -> list[str]:
        out = []
        weights = 1.0 / np.arange(1, len(best) + 1)
        for _ in range(n):
            parent = best[int(self.rng.choice(len(best), p=weights / weights.sum()))].prompt
            lead, opts, closing = _structure(parent)
            op = int(self.rng.integers(0, 5))
            if op == 0:
                lead = [LEADS[int(self.rng.integers(len(LEADS)))]]
            elif op == 1:
                opts = OPTIONS[int(self.rng.integers(len(OPTIONS)))]
            elif op == 2:
                closing = CLOSINGS[int(self.rng.integers(len(CLOSINGS)))]
            elif op == 3:
                lead = lead + [HINTS[int(self.rng.integers(len(HINTS)))]]
            elif lead:
                lead = lead[:-1]  # drop the last lead line: shorter prompts cost less
            out.append(_join(lead, opts, closing))
        return out


# ---- LLM optimiser ---------------------------------------------------------------------

META = (
    "You write instructions for an audio model that hears a short clip and must answer A (the clip contains "
    "human speech) or B (it does not: music, noise, silence, animals).\n"
    "Below are earlier instructions with their scores (higher is better), worst first.\n\n{history}\n\n"
    "Write one new instruction that is different from all of the above and scores higher. It must offer the "
    "two options labelled A and B and ask for one letter. Put it between <PROMPT> and </PROMPT>."
)


def meta_prompt(best: list[Entry]) -> str:
    """The OPRO meta-prompt: the top-k prompts in ascending order of reward, each with its score."""
    shown = "\n\n".join(f"<PROMPT>{e.prompt}</PROMPT>\nscore: {100 * e.reward:.1f}" for e in reversed(best))
    return META.format(history=shown)


def parse_candidate(text: str) -> str | None:
    """The text between the first <PROMPT> and </PROMPT> of a reply, or None."""
    m = re.search(r"<PROMPT>(.*?)</PROMPT>", text, flags=re.S)
    return m.group(1).strip() if m else None


class LlmOptimizer:
    """A causal LM (hub id in the local cache, or a folder) sampling candidates with its chat template."""

    name = "llm"

    def __init__(self, model_id: str, temperature: float, max_new_tokens: int, seed: int, device: str = "cpu"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from audioprobe.detect.llm.model import resolve

        folder = resolve(model_id)
        self.tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device).eval()
        self.temperature, self.max_new_tokens, self.device = temperature, max_new_tokens, device
        self.gen = seed
        self.replies: list[str] = []  # raw replies, for the record

    def propose(self, best: list[Entry], n: int) -> list[str]:
        import torch

        text = self.tok.apply_chat_template([{"role": "user", "content": meta_prompt(best)}], tokenize=False,
                                            add_generation_prompt=True)
        ids = self.tok(text, return_tensors="pt", add_special_tokens=False).to(self.device)
        out = []
        for _ in range(n):
            torch.manual_seed(self.gen)  # one seed per sample: the run is reproducible
            self.gen += 1
            with torch.no_grad():
                gen = self.model.generate(**ids, do_sample=True, temperature=self.temperature, top_p=1.0, top_k=0,
                                          max_new_tokens=self.max_new_tokens,
                                          pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id)
            reply = self.tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
            self.replies.append(reply)
            cand = parse_candidate(reply)
            out.append(cand if cand is not None else reply.strip())
        return out


# ---- the search ------------------------------------------------------------------------

def search(score_fn: Callable[[str], np.ndarray], y: np.ndarray, cond: np.ndarray, optimizer, cfg: LlmOpro,
           seeds: list[str] = SEED_PROMPTS,
           log: Callable[[str], None] | None = None) -> tuple[Entry, list[Entry], list[dict]]:
    """Run OPRO; return (best entry, every scored entry, per-iteration summary rows).

    `score_fn(user_text)` returns dev p(SPEECH) for that prompt. Candidates that repeat a
    scored prompt or fail `valid` are counted in the summary, never scored.
    """
    history: list[Entry] = []

    def add(prompt: str, it: int, origin: str) -> None:
        r = reward(score_fn(prompt), y, cond, prompt, cfg)
        history.append(Entry(it, prompt, r["ba_clip"], r["ba_cond"], int(r["length"]), r["reward"], origin))

    for s in seeds:
        add(s, 0, "seed")
    summary = [{"iteration": 0, "proposed": len(seeds), "invalid": 0, "repeated": 0,
                "best_reward": top(history, 1)[0].reward}]
    best, stale = summary[0]["best_reward"], 0
    for it in range(1, cfg.iterations + 1):
        seen = {e.prompt for e in history}
        cands = optimizer.propose(top(history, cfg.top_k), cfg.candidates)
        invalid = repeated = 0
        for c in cands:
            if not valid(c):
                invalid += 1
            elif c in seen:
                repeated += 1
            else:
                seen.add(c)
                add(c, it, optimizer.name)
        now = top(history, 1)[0].reward
        summary.append({"iteration": it, "proposed": len(cands), "invalid": invalid, "repeated": repeated,
                        "best_reward": now})
        if log is not None:
            log(f"opro iteration {it}: best reward {now:.4f} ({invalid} invalid, {repeated} repeated)")
        if now > best + 1e-12:
            best, stale = now, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    return top(history, 1)[0], history, summary


def history_rows(history: list[Entry]) -> list[dict]:
    """The history as table rows (prompt text with newlines escaped for CSV readers)."""
    return [{**asdict(e), "prompt": e.prompt.replace("\n", "\\n")} for e in history]
