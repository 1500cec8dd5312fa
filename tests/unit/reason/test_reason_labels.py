"""reason_eval's arm labels (issue 21): a random-init encoder arm says so in tables, legends and console
lines; arms with real weights or none (mel, blind) keep their plain names."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from audioprobe.reason.arms import arm_encoder  # noqa: E402
from audioprobe.reason.report import arm_labels, examples_markdown, report_markdown  # noqa: E402

ARMS = ["mel", "blind", "shuffled_mel", "htsat", "shuffled_htsat"]
PROV = {"mel": {"name": "mel", "weights": "none"}, "htsat": {"name": "htsat", "weights": "random-init"}}


def _table():
    rows = []
    for a in ARMS:
        for metric in ("em", "f1"):
            rows.append({"arm": a, "group": "overall", "value": "all", "metric": metric, "mean": 0.5,
                         "ci_low": 0.4, "ci_high": 0.6, "n": 10})
    return rows


def test_random_init_arms_are_labelled_and_only_they():
    labels = arm_labels({a: arm_encoder(a) for a in ARMS}, PROV)
    assert labels == {"mel": "mel", "blind": "blind", "shuffled_mel": "shuffled_mel",
                      "htsat": "htsat (random-init)", "shuffled_htsat": "shuffled_htsat (random-init)"}
    real = arm_labels({a: arm_encoder(a) for a in ARMS}, {**PROV, "htsat": {"weights": "hf:mispeech/htsat",
                                                                            "sha256": "d" * 64}})
    assert real == {a: a for a in ARMS}


def test_report_and_examples_name_the_random_init_arm():
    labels = arm_labels({a: arm_encoder(a) for a in ARMS}, PROV)
    pairs = [{"arm_a": "htsat", "arm_b": "blind", "diff": 0.1, "ci_low": 0.0, "ci_high": 0.2, "p_bootstrap": 0.04,
              "p_mcnemar": 0.05, "only_a": 3, "only_b": 1}]
    lm = {"name": "tiny", "source": "embedded", "sha256": "e" * 64}
    md = report_markdown(ARMS, _table(), pairs, lm, PROV, [], 10, labels=labels)
    assert "| htsat (random-init) | 50.0 |" in md and "| mel | 50.0 |" in md
    assert "| htsat (random-init) | blind | +10.0 |" in md
    rows = [{"taskname": "t", "subtype": "s", "input": "q?", "answer": "a"}]
    ex = examples_markdown(rows, {a: ["a"] for a in ARMS}, {a: [{"em": 1}] for a in ARMS}, 1, [], labels)
    assert "| mel | blind | shuffled_mel | htsat (random-init) | shuffled_htsat (random-init) |" in ex


def test_accuracy_by_type_legend_names_the_random_init_arm(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from audioprobe.reason import figures

    seen, close = [], plt.close
    monkeypatch.setattr(plt, "close", lambda fig: seen.append(fig))
    labels = arm_labels({a: arm_encoder(a) for a in ARMS}, PROV)
    figures.accuracy_by_type(_table(), ARMS, tmp_path / "a.png", [], labels=labels)
    legend = [t.get_text() for t in seen[0].axes[0].get_legend().get_texts()]
    assert legend == ["mel", "blind", "shuffled_mel", "htsat (random-init)", "shuffled_htsat (random-init)"]
    for fig in seen:
        close(fig)
