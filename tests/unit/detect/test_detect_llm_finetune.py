"""Fine-tuning pieces: SpecAugment, the schedule, learning on a separable toy task, adapter round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from audioprobe.detect.llm.batch import extract
from audioprobe.detect.llm.finetune import lora_model, lr_factor, save_adapter, spec_augment, train
from audioprobe.detect.llm.base import write_base
from audioprobe.detect.llm.model import attach_adapter, load_base
from audioprobe.detect.llm.params import DEFAULT_SYSTEM, DEFAULT_USER, LlmFinetune, LlmLora, LlmModel
from audioprobe.detect.llm.prompt import Prompt, encode_prompt
from audioprobe.detect.llm.scoring import score

SR = 16000


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    write_base(LlmModel(), d)
    return d


def toy_clips(n: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """Separable toy clips: SPEECH = a loud 300 Hz harmonic tone, NONSPEECH = quiet white noise (0.2-0.5 s)."""
    rng = np.random.default_rng(seed)
    waves, labels = [], []
    for i in range(n):
        m = int(SR * rng.choice([0.2, 0.3, 0.5]))
        t = np.arange(m) / SR
        if i % 2 == 0:
            w = sum(np.sin(2 * np.pi * 300 * k * t) / k for k in (1, 2, 3)) * 0.5
            labels.append("SPEECH")
        else:
            w = 0.05 * rng.standard_normal(m)
            labels.append("NONSPEECH")
        waves.append(w.astype(np.float32))
    return waves, labels


def test_spec_augment_bounds_and_seed():
    torch.manual_seed(0)
    feats = torch.randn(16, 128, 200)
    mask = torch.zeros(16, 200, dtype=torch.long)
    mask[:, :100] = 1  # 1 s of real frames, 1 s of padding
    cfg = LlmFinetune(specaug_p=1.0, specaug_freq=10, specaug_time=0.05)
    a = spec_augment(feats, mask, cfg, torch.Generator().manual_seed(1))
    b = spec_augment(feats, mask, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(a[:, :, 100:], feats[:, :, 100:]), "padding frames are never touched"
    changed = a != feats
    for i in range(16):
        rows = changed[i].all(dim=1).sum().item()  # mel bins masked over every real frame... of the time span
        cols = changed[i, :, :100].all(dim=0).sum().item()  # frames masked over every bin
        assert rows <= 10 + 0 and cols <= 5
    assert changed.any()
    none = spec_augment(feats, mask, LlmFinetune(specaug_p=0.0), torch.Generator().manual_seed(1))
    assert torch.equal(none, feats)


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 4, 20) == pytest.approx(0.25)
    assert lr_factor(3, 4, 20) == pytest.approx(1.0)
    assert lr_factor(4, 4, 20) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20) == pytest.approx(0.5)
    assert lr_factor(20, 4, 20) == pytest.approx(0.0, abs=1e-12)


def test_trains_and_adapter_round_trip(base_dir, tmp_path):
    """The stand-in learns a separable toy task; the saved adapter reloads via PeftModel and scores the same."""
    torch.set_num_threads(1)
    loaded = load_base(base_dir, LlmModel())
    proc = loaded.processor
    tw, tl = toy_clips(96, 0)
    dw, dl = toy_clips(32, 1)
    train_a, dev_a = extract(proc, tw, SR), extract(proc, dw, SR)
    pids = encode_prompt(proc, Prompt(DEFAULT_SYSTEM, DEFAULT_USER))
    model = lora_model(loaded.model, LlmLora(), embedded=True)
    cfg = LlmFinetune(epochs=4, batch_size=8, grad_accum=1, warmup_steps=4, eval_every=12)
    logged = []
    hist = train(model, proc, pids, train_a, tl, dev_a, dl, cfg, 3e-3, loaded.device, loaded.dtype,
                 log=lambda step, **m: logged.append((step, m)))
    assert [s for s, _ in logged] == [r["step"] for r in hist.rows] == [12, 24, 36, 48]
    best = min(hist.rows, key=lambda r: r["dev_loss"])
    assert hist.best_step == best["step"]
    assert hist.rows[0]["dev_loss"] > best["dev_loss"]
    assert best["dev_balanced_accuracy"] >= 0.9, hist.rows
    p_trained = score(model, proc, pids, dev_a, loaded.device, loaded.dtype, 16)

    out = tmp_path / "adapter"
    out.mkdir()
    save_adapter(model, out, "embedded-tiny-qwen2-audio")
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    cfgj = json.loads((out / "adapter_config.json").read_text())
    assert cfgj["base_model_name_or_path"] == "embedded-tiny-qwen2-audio" and cfgj["r"] == 16
    assert str(tmp_path) not in (out / "adapter_config.json").read_text()
    keys = load_file(out / "adapter_model.safetensors").keys()
    assert any("lora_A" in k for k in keys) and any("lm_head" in k for k in keys)

    reloaded = attach_adapter(load_base(base_dir, LlmModel()), out)
    p_reloaded = score(reloaded.model, proc, pids, dev_a, reloaded.device, reloaded.dtype, 16)
    np.testing.assert_allclose(p_reloaded, p_trained, atol=1e-6)
    bare = load_base(base_dir, LlmModel())
    p_bare = score(bare.model, proc, pids, dev_a, bare.device, bare.dtype, 16)
    assert np.abs(p_bare - p_trained).max() > 1e-3, "the adapter must change the scores"
    assert reloaded.weights["source"] == "trained-here" and reloaded.weights["base"]["source"] == "random-init"


def test_saved_adapter_config_does_not_depend_on_the_hash_seed(tmp_path):
    """peft keeps target_modules as a set; the saved list is sorted, so reruns are byte-identical."""
    import json

    from audioprobe.detect.llm.finetune import save_adapter

    class StubPeftModel:  # writes what peft writes, in a set's arbitrary order
        def save_pretrained(self, out, safe_serialization=True):
            (Path(out) / "adapter_config.json").write_text(json.dumps(
                {"target_modules": ["v_proj", "o_proj", "q_proj", "k_proj"], "modules_to_save": ["lm_head", "a"],
                 "base_model_name_or_path": "/host/path"}))
            (Path(out) / "adapter_model.safetensors").write_bytes(b"x")

    save_adapter(StubPeftModel(), tmp_path, "embedded-tiny")
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert cfg["modules_to_save"] == ["a", "lm_head"] and cfg["base_model_name_or_path"] == "embedded-tiny"


def test_the_global_seed_drives_the_fine_tune(base_dir):
    """A seed sweep (`dvc exp run -S seed=...`) gets detect replicates: the fine-tune's random choices come
    from the seed it is given (the stage passes the global `seed`), the same seed repeats the run exactly."""
    import yaml

    torch.set_num_threads(1)
    proc = load_base(base_dir, LlmModel()).processor
    tw, tl = toy_clips(16, 0)
    dw, dl = toy_clips(8, 1)
    train_a, dev_a = extract(proc, tw, SR), extract(proc, dw, SR)
    pids = encode_prompt(proc, Prompt(DEFAULT_SYSTEM, DEFAULT_USER))
    cfg = LlmFinetune(epochs=1, batch_size=8, grad_accum=1, warmup_steps=1, eval_every=2)

    def run(seed: int) -> list[float]:
        loaded = load_base(base_dir, LlmModel())
        model = lora_model(loaded.model, LlmLora(), embedded=True, seed=seed)
        hist = train(model, proc, pids, train_a, tl, dev_a, dl, cfg, 3e-3, loaded.device, loaded.dtype, seed=seed)
        return [r["dev_loss"] for r in hist.rows]

    assert run(1) == run(1) and run(1) != run(2)
    assert "seed" not in LlmFinetune.model_fields  # no lane-local seed that a sweep would leave fixed
    stages = yaml.safe_load((Path(__file__).resolve().parents[3] / "dvc.yaml").read_text())["stages"]
    for name, stage in (("detect_finetune", stages["detect_finetune"]), ("detect_opro", stages["detect_opro"]["do"])):
        assert "--seed ${seed}" in stage["cmd"] and "seed" in stage["params"], name
