"""Reports and headline metrics that never overstate (hand-made tables with known answers)."""

from __future__ import annotations

import json

from audioprobe.runtime.headline import MAX_KEYS, STATUS, SYNTHETIC_BANNER, headline
from audioprobe.phase0.decision import DecisionRule, decide, decision_rows
from audioprobe.phase0.report import heldout_label, render_report, speaker_line, verdict
from audioprobe.phase0.summary import (
    ALL_SCHEMES,
    headline_provenance,
    headline_values,
    lookup,
    table_rows,
)
from test_phase0_decision import SCHEMES, summary, table

RULE = DecisionRule()


def flagged_table() -> dict:
    """mean_vq64 fails on VR (0.96, unflagged); pca8_vq256 has a lower VR (0.79) but 36 % excluded."""
    m = table(**{"train.all.vr": 0.97, "eval.all.vr": 0.96})
    for split, mass in (("train", 0.322), ("eval", 0.365)):
        m[f"lag1.pca8_vq256.{split}.all.excluded_mass"] = mass
        m[f"lag1.pca8_vq256.{split}.all.excluded_flag"] = True
    m["lag1.pca8_vq256.eval.all.vr"] = 0.794
    return m


def test_verdict_never_quotes_a_scheme_over_the_exclusion_flag():
    m = flagged_table()
    d = decide(m, SCHEMES, RULE)
    text = verdict(m, d, SCHEMES, RULE, summary())
    assert d["decision"] == "FAIL"
    assert "0.960 (mean_vq64)" in text and "0.794" not in text
    assert "Not quoted: pca8_vq256" in text
    h = headline_values(m, d, SCHEMES, 1, 0.1)
    assert h["best_scheme"] == "mean_vq64" and h["best_eval_vr"] == 0.96
    assert h["pca8_vq256.excluded"] is True and h["mean_vq64.excluded"] is False
    # every scheme flagged: nothing is quoted at all
    for s in SCHEMES:
        m[f"lag1.{s}.eval.all.excluded_mass"] = 0.5
    text = verdict(m, decide(m, SCHEMES, RULE), SCHEMES, RULE, summary())
    assert "no scheme has an eval VR that can be quoted" in text and "0.96" not in text
    assert headline_values(m, d, SCHEMES, 1, 0.1)["best_eval_vr"] == STATUS["undefined"]


def test_synthetic_data_carries_the_banner_and_no_finding():
    m = flagged_table()
    d = decide(m, SCHEMES, RULE)
    text = render_report(m, d, SCHEMES, RULE, summary(source="embedded"))
    assert SYNTHETIC_BANNER in text.splitlines()[3]  # right under the title
    assert "valid negative result" not in text and "A negative result" not in text
    passing = table()
    text = render_report(passing, decide(passing, SCHEMES, RULE), SCHEMES, RULE, summary(source="embedded"))
    assert "PASS at lag 1" in text and "Proceed to Phase 1" not in text and SYNTHETIC_BANNER in text
    data, weights, extra = headline_provenance(summary(source="embedded")["latents"])
    out = headline("phase0", {**headline_values(passing, decide(passing, SCHEMES, RULE), SCHEMES, 1, 0.1), **extra},
                   data, weights)
    assert out["phase0.synthetic"] is True and out["phase0.data.librispeech"] == "embedded@" + "cd" * 6


def test_speaker_counts_count_heldout_speakers_as_train_speakers():
    s = summary()
    line = speaker_line(s)
    assert "24 in all" in line and "train 19 speakers" in line and "eval 5 unseen speakers" in line
    assert "held-out utterances of 6 of the train speakers (708 rows)" in line
    assert heldout_label(s) == "heldout VR (same speakers)"
    s["speakers"]["heldout_also_in_train"] = 4
    assert heldout_label(s) == "heldout VR (4 of 6 spk in train)" and "4 of them also in train" in speaker_line(s)
    s["speakers"]["heldout_also_in_train"] = 0
    assert heldout_label(s) == "heldout VR (no train speakers)"
    text = render_report(table(), decide(table(), SCHEMES, RULE), SCHEMES, RULE, s)
    assert "(same speakers)" not in text


def _excluded_metrics() -> dict:
    """evaluate_lag-shaped metrics: mean_vq64 defined, pca8_quartile with every sample excluded."""
    row = {"n": 100, "n_included": 100, "excluded_mass": 0.0, "excluded_flag": False, "vr": 0.9,
           "random_vr": 1.0, "entropy_gain_nats": 0.01}
    gone = {"n": 100, "n_included": 0, "excluded_mass": 1.0, "excluded_flag": True, "vr": None,
            "random_vr": None, "entropy_gain_nats": None}
    per = lambda r: {split: {sl: dict(r) for sl in ("all", "high_energy", "medial")}  # noqa: E731
                     for split in ("train", "heldout", "eval")}
    return {"mean_vq64": per(row), "pca8_quartile": per(gone)}


def test_headline_keys_are_stable_and_an_excluded_scheme_keeps_its_keys():
    metrics = _excluded_metrics()
    values = lookup(table_rows(1, metrics))
    schemes = list(metrics)
    d = decide(values, schemes, RULE)
    h = headline_values(values, d, schemes, 1, 0.1)
    assert h["pca8_quartile.eval_vr"] == STATUS["excluded"] and h["pca8_quartile.excluded"] is True
    assert h["pca8_quartile.eval_vr_random"] == STATUS["excluded"]
    assert h["pca8_quartile.entropy_gain_nats"] == STATUS["excluded"]
    assert h["pca8_vq256.eval_vr"] == STATUS["undefined"]  # not run: still a key
    assert h["mean_vq64.eval_vr"] == 0.9 and h["best_scheme"] == "mean_vq64"
    assert not any(v == 0 and not isinstance(v, bool) for k, v in h.items() if "pca8" in k)
    data, weights, extra = headline_provenance(summary()["latents"])
    out = headline("phase0", {**h, **extra}, data, weights)
    assert len(out) <= MAX_KEYS and all(k.startswith("phase0.") for k in out)
    # the same key set whatever happened: another run where every scheme is defined
    full = lookup(table_rows(1, {s: _excluded_metrics()["mean_vq64"] for s in ALL_SCHEMES}))
    h2 = headline_values(full, decide(full, list(ALL_SCHEMES), RULE), list(ALL_SCHEMES), 1, 0.1)
    mel_data, mel_weights, mel_extra = headline_provenance(
        {**summary()["latents"], "encoder": "mel", "weights": {"name": "mel", "weights": "none", "sha256": "none"}})
    out2 = headline("phase0", {**h2, **mel_extra}, mel_data, mel_weights)
    assert set(out2) == set(out)
    assert out2["phase0.weights.encoder"] == "none (mel)" and out["phase0.weights.encoder"] == "kyutai/moshiko-pytorch-bf16@" + "ab" * 6
    json.dumps(out, allow_nan=False)


def test_decision_rows_list_every_criterion_with_its_threshold():
    m = flagged_table()
    rows = decision_rows(decide(m, SCHEMES, RULE), SCHEMES, RULE)
    vr = next(r for r in rows if r["scheme"] == "mean_vq64" and r["criterion"] == "vr_eval")
    assert vr["value"] == 0.96 and vr["threshold"] == 0.6 and vr["met"] is False
    exc = next(r for r in rows if r["scheme"] == "pca8_vq256" and r["criterion"] == "exclusion_eval")
    assert exc["value"] == 0.365 and exc["met"] is False


def test_confidence_rows_leave_excluded_values_empty_and_carry_threshold_and_notes():
    from audioprobe.phase0.report import EXCLUDED_NOTE, confidence_rows

    curve = []
    for lag in (1, 2):
        for split in ("eval", "train"):
            for pct in (50.0, 100.0):
                curve.append({"lag": lag, "scheme": "mean_vq64", "split": split, "keep_pct": pct, "n_kept": 10,
                              "vr": 0.9 + lag, "vr_train_means": 0.95 + lag})
                curve.append({"lag": lag, "scheme": "pca8_quartile", "split": split, "keep_pct": pct, "n_kept": 0,
                              "vr": None, "vr_train_means": None})
                curve.append({"lag": lag, "scheme": "pca8_vq256", "split": split, "keep_pct": pct, "n_kept": 5,
                              "vr": 0.5, "vr_train_means": None})
    notes = {"pca8_vq256": "excluded 37% > 10% flag: not quoted"}
    rows = confidence_rows(curve, ["mean_vq64", "pca8_vq256", "pca8_quartile"], RULE, [SYNTHETIC_BANNER], notes)
    assert len(rows) == 3 * 2 * 2 * 2  # decision lag only: schemes x splits x keep % x estimates
    assert [r["scheme"] for r in rows[::8]] == ["mean_vq64", "pca8_vq256", "pca8_quartile"]  # params order
    assert [r["split"] for r in rows[:8:4]] == ["train", "eval"]  # train, heldout, eval order
    mean = [r for r in rows if r["scheme"] == "mean_vq64"]
    assert {r["vr"] for r in mean} == {1.9, 1.95} and all(r["note"] == "" for r in mean)  # lag 1 values
    gone = [r for r in rows if r["scheme"] == "pca8_quartile"]
    assert all(r["vr"] is None and r["note"] == EXCLUDED_NOTE for r in gone)  # empty, never 0
    flagged = [r for r in rows if r["scheme"] == "pca8_vq256"]
    assert all(r["note"] == notes["pca8_vq256"] for r in flagged)
    assert {r["vr"] for r in flagged} == {None}  # an excluded scheme draws nothing (issue 21)
    assert all(r["vr_max"] == RULE.vr_max and r["banner"] == SYNTHETIC_BANNER for r in rows)


def test_verdict_quotes_the_effect_net_of_its_permuted_control_and_says_so():
    # issue 21: eval VR 0.881 with a control at 0.967 read "explain 11.9 %"; the control alone
    # explains 3.3 % by construction, so the effect is 0.967 − 0.881 = 8.6 %.
    m = table(**{"train.all.vr": 0.90, "eval.all.vr": 0.881, "eval.all.random_vr": 0.967,
                 "eval.all.vr_train_means": 0.95})
    d = decide(m, SCHEMES, RULE)
    assert d["decision"] == "FAIL"
    text = verdict(m, d, SCHEMES, RULE, summary())
    assert "0.881 (mean_vq64)" in text and "0.967 for its permuted random control" in text
    assert "net of that control, coarse context clusters explain 8.6% of next-step variance" in text
    assert "clusters explain 11.9%" not in text  # the raw in-sample share is no longer the claim
    assert "in-sample 11.9%, of which the control explains 3.3% by construction" in text
    assert "around the train cluster means (out of sample) they explain 5.0%" in text
    h = headline_values(m, d, SCHEMES, 1, 0.1)
    assert abs(h["best_explained_net_of_control"] - 0.086) < 1e-9
    # a pass quotes the net effect too
    ok = table(**{"eval.all.random_vr": 0.98})
    text = verdict(ok, decide(ok, SCHEMES, RULE), SCHEMES, RULE, summary())
    assert "PASS at lag 1" in text and "net of that control, coarse context clusters explain 43.0%" in text
    # no control: the raw share is named an uncorrected upper bound
    del m["lag1.mean_vq64.eval.all.random_vr"]
    text = verdict(m, decide(m, SCHEMES, RULE), SCHEMES, RULE, summary())
    assert "with no defined random control" in text and "an upper bound" in text
    assert headline_values(m, d, SCHEMES, 1, 0.1)["best_explained_net_of_control"] == STATUS["undefined"]


def remnant_table() -> dict:
    """pca8_vq256 keeps 3 % of its samples, each alone in its cluster: every re-estimated VR is 0.000."""
    m = table()
    pre = "lag1.pca8_vq256."
    for split in ("train", "eval"):
        m[f"{pre}{split}.all.excluded_mass"] = 0.97
        m[f"{pre}{split}.all.excluded_flag"] = True
        m[f"{pre}{split}.all.n_included"] = 30
        for sl in ("all", "high_energy", "medial"):
            m[f"{pre}{split}.{sl}.vr"] = 0.0
            m[f"{pre}{split}.{sl}.random_vr"] = 0.0
    m[f"{pre}eval.all.degradation"] = 0.0
    m[f"{pre}eval.all.entropy_gain_nats"] = 0.4
    m[f"{pre}eval.all.vr_train_means"] = 0.0
    return m


def test_an_excluded_scheme_shows_no_number_and_meets_no_criterion():
    # issue 21: "excluded means no number anywhere".
    m = remnant_table()
    d = decide(m, SCHEMES, RULE)
    assert d["pca8_vq256.excluded"] is True and d["mean_vq64.excluded"] is False
    for c in ("vr_train", "vr_eval", "degradation", "medial_eval", "high_energy_train"):
        assert d[f"pca8_vq256.{c}"] is False and f"pca8_vq256.{c}_value" not in d  # 0.000 is never "met"
        assert d[f"pca8_vq256.{c}_status"] == "excluded"
    rows = decision_rows(d, SCHEMES, RULE)
    vr = next(r for r in rows if r["scheme"] == "pca8_vq256" and r["criterion"] == "vr_eval")
    assert vr["value"] is None and vr["status"] == "excluded" and vr["met"] is False
    exc = next(r for r in rows if r["scheme"] == "pca8_vq256" and r["criterion"] == "exclusion_eval")
    assert exc["value"] == 0.97 and exc["met"] is False  # the reason stays visible
    text = render_report(m, d, SCHEMES, RULE, summary())
    matrix = text.split("Decision matrix")[1].split("Verdict")[0]
    vr_line = next(line for line in matrix.splitlines() if line.startswith("VR eval (all)"))
    assert vr_line.split()[-2:] == ["excluded", "x"] and "0.000" not in vr_line
    gain_line = next(line for line in matrix.splitlines() if "gain over control" in line)
    assert gain_line.split()[-1] == "excluded"
    h = headline_values(m, d, SCHEMES, 1, 0.1)
    assert h["pca8_vq256.excluded"] is True
    for k in ("eval_vr", "eval_vr_random", "entropy_gain_nats"):
        assert h[f"pca8_vq256.{k}"] == STATUS["excluded"]
    assert h["mean_vq64.eval_vr"] == 0.55  # an included scheme keeps its numbers
    # the origin's rule (no exclusion guard) judges the remnant's numbers and so shows them
    origin = DecisionRule(require_low_exclusion=False)
    d0 = decide(m, SCHEMES, origin)
    assert d0["pca8_vq256.vr_eval_value"] == 0.0 and d0["pca8_vq256.vr_eval"] is True


def test_vr_by_slice_draws_no_bar_for_an_excluded_scheme(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    from audioprobe.phase0.report import plot_vr_by_slice

    heights: list[float] = []
    real_bar = Axes.bar

    def bar(self, x, height, *a, **k):
        heights.append(float(height))
        return real_bar(self, x, height, *a, **k)

    monkeypatch.setattr(Axes, "bar", bar)
    m = remnant_table()
    for sl in ("all", "high_energy", "medial"):
        for split in ("train", "eval"):
            m[f"lag1.mean_vq64.{split}.{sl}.vr"] = 0.5
    d = decide(m, SCHEMES, RULE)
    plot_vr_by_slice(m, ["pca8_vq256"], RULE, 0.1, [], tmp_path / "a.png", d)
    assert heights == [] and (tmp_path / "a.png").stat().st_size > 0  # no zero-height bar that reads as perfect
    plot_vr_by_slice(m, SCHEMES, RULE, 0.1, [], tmp_path / "b.png", d)
    assert heights == [0.5] * 6  # mean_vq64's bars only


def test_speaker_vr_axis_spans_zero_to_past_one_with_reference_lines(tmp_path, monkeypatch):
    # issue 21: autoscaled to 0.94–1.00, a chance-level spread of speaker VRs looked like structure.
    import matplotlib

    matplotlib.use("Agg")
    from audioprobe.phase0 import report

    figs = []
    monkeypatch.setattr(report, "_save", lambda fig, path: figs.append(fig))
    spk = [{"scheme": "mean_vq64", "split": sp, "lag": 1, "vr_train_means": v}
           for sp in ("train", "eval") for v in (0.94, 0.96, 0.99, 1.0)]
    report.plot_speakers(spk, ["mean_vq64"], 1, [], tmp_path / "s.png", None, RULE.vr_max)
    ax = figs[0].axes[0]
    lo, hi = ax.get_ylim()
    assert lo == 0.0 and hi >= 1.05
    assert {round(float(line.get_ydata()[0]), 3) for line in ax.get_lines()
            if len(set(line.get_ydata())) == 1 and line.get_xdata()[0] == 0} >= {1.0, 0.6}
