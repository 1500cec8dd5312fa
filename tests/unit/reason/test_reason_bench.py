"""The reason benchmark runs end to end on a tiny setting and reports both decoders agreeing."""

from __future__ import annotations

from audioprobe.bench.reason import main


def test_bench_reports_train_and_decode_rates(capsys):
    out = main(["--steps", "2", "--rows", "8", "--batch-size", "4", "--max-new-tokens", "3", "--seconds", "2",
                "--encoders", "mel,htsat", "--device", "cpu"])
    assert set(out["train_steps_per_s"]) == {"mel", "htsat"} and all(v > 0 for v in out["train_steps_per_s"].values())
    assert out["decode_same_tokens"] is True and out["decode_speedup_kv_vs_no_cache"] > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("{") and '"decode_tokens_per_s"' in last
