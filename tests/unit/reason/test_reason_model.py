"""reason model pieces: mapper shapes, answer-only loss masking, decoding (batched, cached), data guards."""

from __future__ import annotations

import warnings

import pytest
import torch

from audioprobe.runtime.errors import DataError, ParamsError, WeightsError
from audioprobe.reason import lm as lmlib
from audioprobe.reason.batching import IGNORE, answer_ids, assemble, prompt_ids
from audioprobe.reason.decode import greedy_decode
from audioprobe.reason.evaluate import check_split
from audioprobe.reason.mapper import AudioMapper
from audioprobe.reason.params import Reason, ReasonLM
from audioprobe.reason.arms import arm_clips, derangement

TEXTS = ["Question: What is the main sound source in this audio?\nAnswer: dog bark",
         "Question: Is there rain in this recording?\nAnswer: yes",
         "Question: Which recording is louder, the first or the second?\nAnswer: first"] * 10


@pytest.fixture(scope="module")
def tok():
    return lmlib.build_tokenizer(TEXTS, 300)


@pytest.fixture(scope="module")
def lm(tok):
    torch.manual_seed(0)
    model = lmlib.tiny_llama(tok, ReasonLM(hidden=32, intermediate=64, heads=4, kv_heads=2, layers=2)).eval()
    with torch.no_grad():  # large random weights: varied, non-degenerate greedy outputs
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model.requires_grad_(False)


def test_mapper_shapes_and_two_clip_separator():
    torch.manual_seed(0)
    m = AudioMapper(enc_dim=6, lm_dim=10)
    assert m.net[0].out_features == 2 * max(6, 10) and m.net[2].out_features == 10
    clips = [[torch.randn(3, 6)], [torch.randn(2, 6), torch.randn(4, 6)]]
    out = m(clips)
    assert [o.shape for o in out] == [(3, 10), (2 + 1 + 4, 10)]
    assert torch.equal(out[1][2], m.separator)  # the learned separator sits between the clips
    # each clip mapped on its own frames (batched vs alone: float32 matmuls of different
    # shapes may round differently, hence an absolute tolerance well above rounding)
    assert torch.allclose(out[1][:2], m([[clips[1][0]]])[0], rtol=1e-5, atol=1e-6)


def test_loss_labels_only_answer_and_eos(tok):
    embed = torch.nn.Embedding(len(tok), 8)
    p1, p2 = prompt_ids(tok, "Is there rain?"), prompt_ids(tok, "What is the main sound in this audio?")
    a1, a2 = answer_ids(tok, "yes"), answer_ids(tok, "dog bark")
    assert a1[-1] == tok.eos_token_id and a2[-1] == tok.eos_token_id
    prefixes = [torch.randn(4, 8), torch.randn(2, 8)]
    b = assemble(prefixes, [p1, p2], [a1, a2], embed, tok.pad_token_id, side="right")
    for i, (pre, p, a) in enumerate(zip(prefixes, [p1, p2], [a1, a2])):
        n_pre, row = pre.shape[0], b.labels[i]
        assert (row[: n_pre + len(p)] == IGNORE).all()  # audio prefix and question
        assert row[n_pre + len(p): n_pre + len(p) + len(a)].tolist() == a  # answer + EOS
        assert (row[n_pre + len(p) + len(a):] == IGNORE).all()  # pad
        assert b.attention_mask[i].sum() == n_pre + len(p) + len(a)
        assert torch.equal(b.inputs_embeds[i, :n_pre], pre)
    left = assemble(prefixes, [p1, p2], None, embed, tok.pad_token_id, side="left")
    assert (left.attention_mask[:, -1] == 1).all()  # every row ends in the last column
    assert left.position_ids[1, -1] == prefixes[1].shape[0] + len(p2) - 1


def _inputs(tok, n: int):
    qs = ["Is there rain?", "What is the main sound source in this audio?", "x", "Which is louder?",
          "Is it loud or quiet?"][:n]
    g = torch.Generator().manual_seed(1)
    pre = [torch.randn(k, 32, generator=g) if k else None for k in (5, 2, 0, 9, 1)][:n]
    return pre, [prompt_ids(tok, q) for q in qs]


def test_batched_decoding_equals_one_by_one(tok, lm):
    pre, prompts = _inputs(tok, 5)
    batched = greedy_decode(lm, pre, prompts, tok.eos_token_id, tok.pad_token_id, 12)
    single = [greedy_decode(lm, [pre[i]], [prompts[i]], tok.eos_token_id, tok.pad_token_id, 12)[0]
              for i in range(5)]
    assert batched == single
    assert len({tuple(t) for t in batched}) > 1  # non-degenerate: rows differ


def test_kv_cache_equals_full_recompute(tok, lm):
    pre, prompts = _inputs(tok, 5)
    cached = greedy_decode(lm, pre, prompts, tok.eos_token_id, tok.pad_token_id, 12, use_cache=True)
    full = greedy_decode(lm, pre, prompts, tok.eos_token_id, tok.pad_token_id, 12, use_cache=False)
    assert cached == full


def test_decoding_stops_at_eos_and_max_new_tokens(tok, lm):
    pre, prompts = _inputs(tok, 2)
    free = greedy_decode(lm, pre, prompts, tok.eos_token_id, tok.pad_token_id, 6)
    assert all(len(t) <= 6 for t in free)
    stop = free[0][2]  # pretend the third token of row 0 is EOS: row 0 must end just before it
    cut = greedy_decode(lm, pre, prompts, stop, tok.pad_token_id, 6)
    assert cut[0] == free[0][: free[0].index(stop)]
    assert stop not in cut[1] and cut[1] == free[1][: len(cut[1])]


def test_tokenizer_and_lm_round_trip(tmp_path, tok, lm):
    lm.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model, tok2 = lmlib.load_frozen_lm(lmlib.resolve_lm("embedded", tmp_path))
    assert not any(p.requires_grad for p in model.parameters())
    ids = torch.tensor([prompt_ids(tok, "Is there rain?")])
    assert tok2(lmlib.prompt_text("Is there rain?"), add_special_tokens=False)["input_ids"] == ids[0].tolist()
    assert torch.allclose(model(input_ids=ids).logits, lm(input_ids=ids).logits, atol=1e-6)


def test_real_lm_missing_offline_names_the_param(tmp_path):
    with pytest.raises(WeightsError, match="reason.lm.name"):
        lmlib.resolve_lm("HuggingFaceTB/definitely-not-cached-135M", tmp_path)


def test_eval_refuses_train_split():
    with pytest.raises(ParamsError, match="test split only"):
        check_split("train")
    check_split("test")


def test_derangement_moves_every_clip_and_is_seeded():
    items = [f"c{i}" for i in range(7)]
    d = derangement(items, 3)
    assert sorted(d) == items and sorted(d.values()) == items and all(k != v for k, v in d.items())
    assert d == derangement(items, 3)
    with pytest.raises(DataError):
        derangement(["only"], 0)


def test_evaluation_takes_the_arms_from_arms_not_from_training():
    """reason_eval and reason/evaluate.py build the arms' inputs through reason/arms.py, never through the
    training module (which holds only the training loop)."""
    import ast
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]

    def imports(rel: str) -> set[str]:
        tree = ast.parse((repo / rel).read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    for rel in ("stages/reason_eval.py", "lib/audioprobe/reason/evaluate.py"):
        assert "audioprobe.reason.training" not in imports(rel), rel
    assert "audioprobe.reason.arms" in imports("stages/reason_eval.py")
    assert "audioprobe.reason.arms" in imports("stages/reason_train.py")


def test_arms_blind_and_shuffled_inputs():
    rows = [{"filepath1": "a.wav", "filepath2": ""}, {"filepath1": "b.wav", "filepath2": "a.wav"}]
    feats = {"a.wav": torch.zeros(3, 4).numpy() + 1, "b.wav": torch.zeros(5, 4).numpy() + 2}
    enc = arm_clips("mel", rows, feats, 0, "test")
    assert [[c.shape[0] for c in r] for r in enc] == [[3], [5, 3]]
    blind = arm_clips("blind", rows, None, 0, "test")
    assert [[tuple(c.shape) for c in r] for r in blind] == [[(1, 1)], [(1, 1), (1, 1)]]
    assert all(float(c.abs().sum()) == 0 for r in blind for c in r)
    shuf = arm_clips("shuffled_mel", rows, feats, 0, "test")
    assert [[c.shape[0] for c in r] for r in shuf] == [[5], [3, 5]]  # every clip swapped for the other


def test_params_reject_unknown_arm_and_unencoded_arm():
    with pytest.raises(ValueError, match="unknown encoder 'wav2vec'"):
        Reason.model_validate({"train": {"audio_arms": ["mel", "wav2vec"]}})
    with pytest.raises(ValueError, match="unknown encoder 'blind'"):
        Reason.model_validate({"train": {"shuffled_arms": ["blind"]}})
    with pytest.raises(ValueError, match="at least one encoder"):
        Reason.model_validate({"train": {"audio_arms": []}})
    with pytest.raises(ValueError, match="train.audio_arms has 'htsat' but encode.encoders lacks it"):
        Reason.model_validate({"train": {"audio_arms": ["htsat"]}})
    cfg = Reason.model_validate({"encode": {"encoders": ["mel", "htsat"]},
                                 "train": {"audio_arms": ["htsat", "mel"], "shuffled_arms": ["htsat"]}})
    assert cfg.train.arms == ["htsat", "mel", "blind", "shuffled_htsat"]
    assert Reason.model_validate({"train": {"shuffled_arms": []}}).train.arms == ["mel", "blind"]


def test_htsat_without_weights_names_the_param_fast(tmp_path):
    from audioprobe.encoders.htsat import clap_config, load_htsat

    cfg = clap_config()
    assert cfg["sampling_rate"] > 0 and cfg["duration"] > 0  # read from the 2023 release's config
    with pytest.raises(WeightsError, match=r"reason.encoders.htsat.weights.*allow_random_init"):
        load_htsat(str(tmp_path / "CLAP_weights_2023.pth"))


def test_mimi_codes_random_init_is_labelled_and_shaped():
    from audioprobe.encoders.mimi_codes import load_mimi_codes

    with pytest.raises(WeightsError, match="allow_random_init"):
        load_mimi_codes("no/such-mimi", 1, param="reason.encoders.mimi_semantic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        semantic = load_mimi_codes("no/such-mimi", 1, size="tiny", allow_random_init=True)
        full = load_mimi_codes("no/such-mimi", 8, size="tiny", allow_random_init=True)
    wave = torch.randn(2, 24000)
    for enc in (semantic, full):
        assert enc.is_random and enc.provenance["weights"] == "random-init"
        assert enc.encode(wave).shape == (2, enc.num_frames(24000), enc.dim)
    assert (semantic.name, full.name) == ("mimi_semantic", "mimi_full")
    assert semantic.provenance["codebooks"] == "1" and full.provenance["codebooks"] == "8"


@pytest.mark.parametrize("config", ["{not json", '{"model_type": "no-such-model"}', "{}"])
def test_a_folder_with_a_junk_config_is_refused_in_one_line(tmp_path, config):
    (tmp_path / "config.json").write_text(config)
    folder = lmlib.resolve_lm(str(tmp_path), tmp_path / "unused")
    with pytest.raises(WeightsError) as e:
        lmlib.load_frozen_lm(folder)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and "reason.lm.name" in msg


def test_shuffled_stage_reads_its_encoder_as_the_shuffled_arm():
    from stages.reason_train_shuffled import arm_args

    assert arm_args(["--encoder", "mel", "--seed", "3"]) == ["--arm", "shuffled_mel", "--seed", "3"]
    assert arm_args(["--raw", "r", "--encoder=htsat"]) == ["--raw", "r", "--arm=shuffled_htsat"]
