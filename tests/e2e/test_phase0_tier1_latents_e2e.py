"""phase0 Tier 1 latents through the real dvc: one and two torchrun processes write the same stores."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
@pytest.mark.e2e
def test_dvc_repro_tier1_latents_one_and_two_processes_agree(temp_repo):
    """`dvc repro tier1_latents` (foreach over phase0.tier1.encoders), then nproc 2: the same outputs.

    Mimi is left out of the foreach here to keep the test short (its stage runs in the test above).
    """
    import yaml

    temp_repo.set_params({"data": {"librispeech": {"embedded": {"speakers": 4, "utterances": 5}}},
                          "phase0": {"latents": {"batch_size": 1, "device": "cpu"},
                                     "tier1": {"encoders": ["mel", "encodec"]}}})
    temp_repo.commit("tiny")
    temp_repo.run("dvc", "repro", "phase0_tier1_latents")
    root = temp_repo.root
    for enc, rate in (("mel", 50.0), ("encodec", 75.0)):
        stats = json.loads((root / f"plots/phase0/tier1_latents/{enc}/latents.json").read_text())
        assert stats["frame_rate"] == rate and stats["n_utterances"] == 20
        assert (root / f"data/phase0/tier1/latents/{enc}/index.parquet").is_file()
    outs = lambda: {s: [o["md5"] for o in v["outs"]]  # noqa: E731
                    for s, v in yaml.safe_load((root / "dvc.lock").read_text())["stages"].items()
                    if s.startswith("phase0_tier1_latents@")}
    one = outs()
    assert sorted(one) == ["phase0_tier1_latents@encodec", "phase0_tier1_latents@mel"]
    # 20 utterances at batch size 1 = blocks of 16 + 4: each of the 2 ranks encodes one block.
    temp_repo.set_params({"phase0": {"latents": {"nproc": 2}}})
    temp_repo.run("dvc", "repro", "phase0_tier1_latents")
    two = outs()
    assert two["phase0_tier1_latents@mel"] == one["phase0_tier1_latents@mel"]
    assert two["phase0_tier1_latents@encodec"] == one["phase0_tier1_latents@encodec"]
    assert not list((root / "data/phase0/tier1/latents").glob(".*partial"))
