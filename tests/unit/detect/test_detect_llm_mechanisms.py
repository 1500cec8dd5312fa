"""The audio-LLM mechanisms on a tiny task, and the mutations a broken lane would carry.

The task: SPEECH clips are harmonic tone bursts, NONSPEECH clips are pink noise, both at
random levels; the model is the embedded stand-in (narrower), random, as detect_llm_base
builds it, pretrained on the task's train clips as detect_llm_base pretrains it. With the
mechanism intact:
- pretraining (audioprobe.detect.llm.pretrain) makes the base answer "Is someone talking?"
  right on held-out clips, where the random init is at chance;
- the LoRA fine-tune (answer-only loss) lifts the A/B prompt to near-perfect test balanced
  accuracy, and its reported dev loss is exactly the answer token's cross-entropy;
- the adapter, saved and attached through the scoring path (systems.load_model), changes the
  scores.
Each mutation — labels that cover the prompt tokens, an adapter that is never attached at
scoring — makes `finetune_ok` / `lora_scoring_ok` false: the suite, not only the pipeline,
catches a broken fine-tune.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from audioprobe.audio.io import write_audio
from audioprobe.detect.llm import batch as batchlib
from audioprobe.detect.llm import finetune as ftlib
from audioprobe.detect.llm import systems
from audioprobe.detect.llm.base import Pretraining, write_base
from audioprobe.detect.llm.model import read_base
from audioprobe.detect.llm.params import DEFAULT_SYSTEM, DEFAULT_USER, LlmFinetune, LlmLora, LlmModel, LlmPretrain
from audioprobe.detect.llm.pretrain import QUESTIONS, coloured_noise, make_batch, question_ids, train_material
from audioprobe.detect.llm.prompt import Prompt, encode_prompt
from audioprobe.detect.llm.scoring import score

SR = 16000
CFG = LlmModel(embedded_width=32, embedded_layers=1, embedded_vocab=300)


def _clip(speech: bool, rng: np.random.Generator) -> np.ndarray:
    n = int(SR * rng.choice([0.3, 0.5]))
    t = np.arange(n) / SR
    if speech:
        f0 = rng.uniform(110, 220)
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    else:
        x = coloured_noise(n, "pink", rng)
    return (x / np.max(np.abs(x)) * rng.uniform(0.2, 0.9)).astype(np.float32)


def _clips_folder(root: Path, n: dict[str, int], seed: int = 0) -> pl.DataFrame:
    """A detect_dataset-shaped folder: clips.parquet + clean/ and audio/ wavs, labels alternating."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, count in n.items():
        for i in range(count):
            label = "SPEECH" if i % 2 == 0 else "NONSPEECH"
            cid = f"{split}_{i:03d}"
            x = _clip(label == "SPEECH", rng)
            write_audio(root / "clean" / f"{cid}.wav", x, SR)
            write_audio(root / "audio" / f"{cid}.wav", x, SR)
            rows.append({"clip_id": cid, "split": split, "label": label, "duration_ms": 500, "snr_db": 20.0,
                         "nonspeech_type": "" if label == "SPEECH" else "noise", "source_file": f"src/{cid}.wav",
                         "group": f"g:{cid}", "speaker": "", "audio": f"audio/{cid}.wav",
                         "clean": f"clean/{cid}.wav"})
    table = pl.DataFrame(rows)
    table.write_parquet(root / "clips.parquet")
    return table


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    table = _clips_folder(root, {"train": 64, "dev": 24, "test": 32})
    return root, table


def _audio(root: Path, table: pl.DataFrame, split: str, processor):
    t = table.filter(pl.col("split") == split)
    clips = systems.load_clips(t, root, processor)
    return clips.audio, t["label"].to_list(), (t["label"] == "SPEECH").to_numpy().astype(int)


# ---- pretraining --------------------------------------------------------------------------


def test_pretraining_material_is_the_clean_train_split_only(tmp_path):
    """Only train rows' clean segments are read: dev/test files and the noisy mixes do not even exist."""
    table = _clips_folder(tmp_path, {"train": 6, "dev": 4, "test": 4})
    for rel in table.filter(pl.col("split") != "train")["clean"].to_list() + table["audio"].to_list():
        (tmp_path / rel).unlink()
    from audioprobe.detect.llm.tiny import build_processor

    mat = train_material(tmp_path, build_processor(300), [0.0], copies=2, seed=0)
    assert mat.table["split"].unique().to_list() == ["train"]
    assert len(mat.audio) == 12 and sorted(set(mat.row_of.tolist())) == list(range(6))
    assert np.isinf(mat.snr_db[:6]).all() and (mat.snr_db[6:] == 0.0).all()
    # no source file, group or speaker of dev/test reaches it
    others = table.filter(pl.col("split") != "train")
    for col in ("source_file", "group"):
        assert not set(mat.table[col].to_list()) & set(others[col].to_list())


def test_pretraining_material_lists_every_unreadable_file(tmp_path):
    table = _clips_folder(tmp_path, {"train": 4, "dev": 2})
    for rel in table.filter(pl.col("split") == "train")["clean"].to_list()[:3]:
        (tmp_path / rel).write_bytes(b"junk")
    from audioprobe.detect.llm.tiny import build_processor
    from audioprobe.runtime.errors import DataError

    with pytest.raises(DataError, match="3 unreadable clean clip") as err:
        train_material(tmp_path, build_processor(300), [0.0], copies=1, seed=0)
    assert "\n" not in str(err.value)
    assert all(f"train_00{i}.wav" in str(err.value) for i in range(3)) and "train_003" not in str(err.value)


def test_coloured_noise_has_its_spectral_slope():
    """Power spectral density slope in log-log: white 0, pink -1, brown -2 (known answers, +-0.15)."""
    rng = np.random.default_rng(0)
    for colour, want in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        psd = np.mean([np.abs(np.fft.rfft(coloured_noise(4096, colour, rng))) ** 2 for _ in range(64)], axis=0)
        f = np.fft.rfftfreq(4096)[4:1024]
        slope = np.polyfit(np.log(f), np.log(psd[4:1024]), 1)[0]
        assert slope == pytest.approx(want, abs=0.15), colour
        assert np.sqrt(np.mean(coloured_noise(4096, colour, rng) ** 2)) == pytest.approx(1.0)


def _talking_ba(model, processor, audio, y) -> float:
    """Balanced accuracy of the pretraining question's Yes/No logits on `audio`."""
    from audioprobe.detect.llm.prompt import PromptIds

    tok = processor.tokenizer
    before, after = question_ids(processor, DEFAULT_SYSTEM)[0]
    pids = PromptIds(before, after, {}, [])
    yes, no = (tok(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", "No"))
    b = batchlib.build_batch(pids, audio, np.arange(len(audio)), tok.convert_tokens_to_ids(processor.audio_token),
                             tok.pad_token_id)
    with torch.no_grad():
        last = model(**b).logits[:, -1]
    return ftlib.balanced_accuracy((last[:, yes] > last[:, no]).float().numpy(), y)


@pytest.fixture(scope="module")
def pretrained_base(task, tmp_path_factory):
    root, _ = task
    out = tmp_path_factory.mktemp("base")
    record = write_base(CFG, out, Pretraining(root, LlmPretrain(steps=120, batch_size=16, lr=3e-3, copies=2)))
    return out, record


def test_pretraining_makes_the_base_hear(task, pretrained_base):
    root, table = task
    out, record = pretrained_base
    loaded = systems.load_model("base", out, None, CFG)
    audio, _, y = _audio(root, table, "test", loaded.processor)
    assert _talking_ba(loaded.model, loaded.processor, audio, y) >= 0.9
    random_dir = out.parent / "random"
    random_dir.mkdir()
    write_base(CFG, random_dir)
    rnd = systems.load_model("base", random_dir, None, CFG)
    assert 0.3 <= _talking_ba(rnd.model, rnd.processor, audio, y) <= 0.7
    pre = record["pretraining"]
    assert pre["steps"] == 120 and pre["train_segments"] == 64 and pre["questions"] == [q for q, _ in QUESTIONS]
    assert pre["loss_last_10pct"] < 0.5 * pre["loss_first_10pct"]
    assert read_base(random_dir)["pretraining"].startswith("none")


def test_pretrained_weights_are_not_pretrained_again(tmp_path, task):
    """source: pretrained -> nothing is trained; base.json records the no-op and the folder is untouched."""
    root, _ = task
    real = tmp_path / "real"
    real.mkdir()
    write_base(CFG, real)
    before = {p.name: p.read_bytes() for p in real.iterdir()}
    out = tmp_path / "out"
    out.mkdir()
    record = write_base(LlmModel(source="pretrained", id=str(real)), out, Pretraining(root, LlmPretrain(steps=50)))
    assert record["pretraining"].startswith("none: pretrained weights")
    assert sorted(p.name for p in out.iterdir()) == ["base.json"]
    assert {p.name: p.read_bytes() for p in real.iterdir()} == before


def test_pretraining_loss_trains_the_answer_only(task):
    """make_batch labels exactly the answer word and <|im_end|>: never the question, audio or padding."""
    root, _ = task
    from audioprobe.detect.llm.tiny import build_processor

    processor = build_processor(300)
    mat = train_material(root, processor, [0.0], copies=1, seed=0)
    b = make_batch(processor, question_ids(processor, DEFAULT_SYSTEM), mat, [(0, 0), (1, 0)])
    tok = processor.tokenizer
    for r, want in ((0, "Yes"), (1, "No")):
        labelled = b["labels"][r][b["labels"][r] != batchlib.IGNORE].tolist()
        assert labelled == tok(want, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]


# ---- LoRA fine-tune and scoring, with mutations ---------------------------------------------


def _finetune(task, base_dir: Path, adapter_dir: Path):
    root, table = task
    loaded = systems.load_model("base", base_dir, None, CFG)
    proc = loaded.processor
    pids = encode_prompt(proc, Prompt(DEFAULT_SYSTEM, DEFAULT_USER))
    tr, tr_lab, _ = _audio(root, table, "train", proc)
    dev, dev_lab, _ = _audio(root, table, "dev", proc)
    model = ftlib.lora_model(loaded.model, LlmLora(rank=4, alpha=8), embedded=True, seed=0)
    cfg = LlmFinetune(epochs=12, batch_size=8, grad_accum=1, warmup_steps=4, eval_every=12, specaug_p=0.0)
    hist = ftlib.train(model, proc, pids, tr, tr_lab, dev, dev_lab, cfg, 1e-2, torch.device("cpu"), torch.float32,
                       seed=0)
    ftlib.save_adapter(model, adapter_dir, "tiny")
    return model, proc, pids, dev, dev_lab, hist


def finetune_ok(model, proc, pids, dev, dev_lab, hist) -> bool:
    """The reported dev loss of the saved (best) state is the answer token's full-vocabulary cross-entropy."""
    tok = proc.tokenizer
    ans = {lab: pids.answer[lab][0] for lab in ("SPEECH", "NONSPEECH")}
    b = batchlib.build_batch(pids, dev, np.arange(len(dev)), tok.convert_tokens_to_ids(proc.audio_token),
                             tok.pad_token_id)
    with torch.no_grad():
        logp = torch.log_softmax(model(**b).logits[:, -1].double(), -1)
    ce = -float(np.mean([logp[i, ans[lab]].item() for i, lab in enumerate(dev_lab)]))
    return abs(ce - hist.best_dev_loss) < 1e-4


def lora_scoring_ok(task, base_dir: Path, adapter_dir: Path) -> bool:
    """Scored through systems.load_model, the LoRA model is right on the test split and the base is not."""
    root, table = task
    scores = {}
    for name in ("base", "lora"):
        loaded = systems.load_model(name, base_dir, adapter_dir, CFG)
        audio, _, y = _audio(root, table, "test", loaded.processor)
        pids = encode_prompt(loaded.processor, Prompt(DEFAULT_SYSTEM, DEFAULT_USER))
        scores[name] = score(loaded.model, loaded.processor, pids, audio, loaded.device, loaded.dtype, 16)
    lora_ba = ftlib.balanced_accuracy(scores["lora"], y)
    return lora_ba >= 0.9 and not np.allclose(scores["lora"], scores["base"], atol=1e-3)


def test_lora_fine_tune_learns_the_ab_answer_and_is_scored_with_its_adapter(task, pretrained_base, tmp_path):
    model, proc, pids, dev, dev_lab, hist = _finetune(task, pretrained_base[0], tmp_path / "adapter")
    assert finetune_ok(model, proc, pids, dev, dev_lab, hist)
    assert max(r["dev_balanced_accuracy"] for r in hist.rows) >= 0.9
    assert lora_scoring_ok(task, pretrained_base[0], tmp_path / "adapter")


def test_mutation_labels_on_the_prompt_tokens_are_caught(task, pretrained_base, tmp_path, monkeypatch):
    real = batchlib.build_batch

    def prompt_labels(*args, **kwargs):
        out = real(*args, **kwargs)
        if "labels" in out:  # the mutation: every real token is a target, as a causal-LM collator would do
            out["labels"] = torch.where(out["attention_mask"].bool(), out["input_ids"], batchlib.IGNORE)
        return out

    monkeypatch.setattr(ftlib, "build_batch", prompt_labels)
    model, proc, pids, dev, dev_lab, hist = _finetune(task, pretrained_base[0], tmp_path / "adapter")
    assert not finetune_ok(model, proc, pids, dev, dev_lab, hist)


def test_mutation_an_adapter_never_attached_at_scoring_is_caught(task, pretrained_base, tmp_path, monkeypatch):
    _finetune(task, pretrained_base[0], tmp_path / "adapter")
    monkeypatch.setattr(systems, "attach_adapter", lambda loaded, adapter_dir: loaded)
    assert not lora_scoring_ok(task, pretrained_base[0], tmp_path / "adapter")


def test_head_probe_trains_the_head_alone_and_gives_lora_a_start_off_the_prior(task, pretrained_base):
    """probe_head moves only the modules_to_save (LoRA and the base frozen meanwhile, trainable after);
    its loss falls from the untrained letters' level, and the fine-tune that follows starts below ln 2."""
    root, table = task
    loaded = systems.load_model("base", pretrained_base[0], None, CFG)
    proc = loaded.processor
    pids = encode_prompt(proc, Prompt(DEFAULT_SYSTEM, DEFAULT_USER))
    tr, tr_lab, _ = _audio(root, table, "train", proc)
    model = ftlib.lora_model(loaded.model, LlmLora(rank=4, alpha=8), embedded=True, seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    losses = ftlib.probe_head(model, proc, pids, tr, tr_lab, 60, 16, 1e-2, torch.device("cpu"), torch.float32, 0)
    assert len(losses) == 60 and np.mean(losses[-10:]) < 0.6 < losses[0]
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all("modules_to_save" in n for n in moved)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable
    assert ftlib.probe_head(model, proc, pids, tr, tr_lab, 0, 16, 1e-2, torch.device("cpu"), torch.float32) == []
