"""Chart banners from provenance (issue 21): "synthetic" only where the data are synthetic,
"random-init" only on the rows, arms and legends that used random weights."""

from __future__ import annotations

from audioprobe.runtime.headline import (
    BANNER_FIELD, RANDOM_INIT_BANNER, SYNTHETIC_BANNER, add_banner_column, banner_text, labelled, with_banner,
    with_row_banners,
)

REAL = {"speech_commands": {"source": "path", "sha256": "a" * 64}}
EMBEDDED = {"speech_commands": {"source": "embedded", "sha256": "b" * 64}}
WEIGHTS = {"mimi": {"source": "random-init", "sha256": None}, "encodec": {"source": "hf:facebook/encodec_24khz",
                                                                         "sha256": "c" * 64}}


def test_banner_is_empty_for_real_data_and_weights_and_says_synthetic_only_for_embedded_data():
    assert banner_text(REAL) == ""
    assert banner_text(REAL, {"encodec": WEIGHTS["encodec"]}) == ""
    assert banner_text(EMBEDDED) == SYNTHETIC_BANNER
    assert banner_text(REAL, WEIGHTS) == f"{RANDOM_INIT_BANNER} (mimi)"  # names the random component only
    assert banner_text(EMBEDDED, WEIGHTS) == f"{SYNTHETIC_BANNER}; {RANDOM_INIT_BANNER} (mimi)"


def test_random_init_marks_only_the_rows_and_legends_that_used_random_weights():
    rows = [{"series": f"{e} native vmf", "encoder": e, "v": 1.0} for e in ("mel", "mimi", "encodec")]
    got = {r["encoder"]: r for r in with_row_banners(rows, REAL, WEIGHTS, "encoder", "series")}
    assert got["mel"][BANNER_FIELD] == got["encodec"][BANNER_FIELD] == ""
    assert got["mimi"][BANNER_FIELD] == f"{RANDOM_INIT_BANNER} (mimi)"
    assert [got[e]["series"] for e in ("mel", "mimi", "encodec")] == [
        "mel native vmf", "mimi native vmf (random-init)", "encodec native vmf"]
    synth = with_row_banners(rows, EMBEDDED, WEIGHTS, "encoder")
    assert [r[BANNER_FIELD] for r in synth] == [SYNTHETIC_BANNER, f"{SYNTHETIC_BANNER}; {RANDOM_INIT_BANNER} (mimi)",
                                                SYNTHETIC_BANNER]
    assert [r["series"] for r in synth] == [r["series"] for r in rows]  # no label column given: names kept
    assert labelled("mimi", WEIGHTS) == "mimi (random-init)" and labelled("encodec", WEIGHTS) == "encodec"


def test_with_banner_puts_the_column_last_and_replaces_an_old_one():
    rows = with_banner([{"banner": "old", "a": 1}], "")
    assert rows == [{"a": 1, "banner": ""}] and list(rows[0]) == ["a", BANNER_FIELD]


def test_add_banner_column_keeps_a_dvclive_tsv_byte_for_byte_plus_the_column(tmp_path):
    metrics = tmp_path / "plots" / "metrics"
    metrics.mkdir(parents=True)
    body = "timestamp\tstep\tval_acc\n1700000000\t0\t0.12345678901234567\n1700000001\t1\t0.5\n"
    (metrics / "val_acc.tsv").write_text(body)
    (tmp_path / "metrics.json").write_text("{}")
    changed = add_banner_column(tmp_path, SYNTHETIC_BANNER)
    assert changed == [metrics / "val_acc.tsv"]
    lines = (metrics / "val_acc.tsv").read_text().splitlines()
    assert lines[0] == f"timestamp\tstep\tval_acc\t{BANNER_FIELD}"
    assert lines[1] == f"1700000000\t0\t0.12345678901234567\t{SYNTHETIC_BANNER}"  # the value as dvclive wrote it
    add_banner_column(tmp_path, "")  # rerun with real data: the column replaced, not doubled
    head, *rest = body.splitlines()
    assert (metrics / "val_acc.tsv").read_text() == "".join([f"{head}\t{BANNER_FIELD}\n", *(f"{r}\t\n" for r in rest)])
    assert (tmp_path / "metrics.json").read_text() == "{}"
