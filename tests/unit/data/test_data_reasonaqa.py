"""The one ReasonAQA loader (`data.reasonaqa.load_split`): each rule it unified from the data checks'
loader and the reason lane's old `load_rows`, and the download check (`scan`) reporting the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audioprobe.data import reasonaqa
from audioprobe.data.layout import DataProblems
from audioprobe.runtime.errors import DataError

ROW = dict(taskname="t", subtype="s", caption1="", caption2="", input="q?", answer="a", filepath1="audio/ok.wav",
           filepath2="")


@pytest.fixture
def root(tmp_path) -> Path:
    """A folder with good train and val splits; each test writes the test split."""
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "ok.wav").write_bytes(b"")
    for split in ("train", "val"):
        (tmp_path / f"{split}.json").write_text(json.dumps([ROW]))
    return tmp_path


def _write(root: Path, rows, split: str = "test") -> Path:
    f = root / f"{split}.json"
    f.write_text(rows if isinstance(rows, str) else json.dumps(rows))
    return f


def _problems(root: Path, split: str = "test") -> list[str]:
    """The problem lines of load_split's error; the same problems the download check (scan) reports."""
    with pytest.raises(DataProblems) as err:
        reasonaqa.load_split(root, split)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("data.reasonaqa: ") and lines[0].endswith("fix every line below, then rerun")
    assert [p.line() for p in reasonaqa.scan(root)[2]] == [ln.strip() for ln in lines[1:]]
    return [ln.strip() for ln in lines[1:]]


def test_good_rows_load_in_order(root):
    rows = [ROW, {**ROW, "filepath2": "audio/ok.wav", "input": "same?"}]
    _write(root, rows)
    assert reasonaqa.load_split(root, "test") == rows
    assert reasonaqa.SPLITS == ("train", "val", "test")
    assert [reasonaqa.row_clips(r) for r in rows] == [["audio/ok.wav"], ["audio/ok.wav", "audio/ok.wav"]]
    assert reasonaqa.split_clips(rows) == ["audio/ok.wav"]


def test_every_problem_of_the_file_at_once_one_line_each(root):
    """Data side won: one line per problem naming the file and the row; a row lacking fields no longer
    hides the rows whose audio is missing (the reason loader stopped at the field problems)."""
    f = _write(root, [ROW, {**ROW, "filepath1": "audio/gone1.wav"}, {k: v for k, v in ROW.items() if k != "subtype"},
                      {**ROW, "filepath2": "audio/gone2.wav"}])
    assert _problems(root) == [
        f"{root / 'audio/gone1.wav'}: named by test.json row 1 filepath1 but missing; restore the clip or fix the row",
        f"{f} row 2: lacks fields ['subtype'] of the Mellow schema; fix the row",
        f"{root / 'audio/gone2.wav'}: named by test.json row 3 filepath2 but missing; restore the clip or fix the row",
    ]


def test_a_row_that_is_not_an_object_is_named(root):
    f = _write(root, [ROW, ["not", "a", "row"]])
    assert _problems(root) == [f"{f} row 1: is not a JSON object with the Mellow fields; fix the row"]


def test_empty_filepath1_is_an_error(root):
    """Reason side won: a question needs a clip; the data check used to let the row through."""
    f = _write(root, [ROW, {**ROW, "filepath1": ""}])
    assert _problems(root) == [f"{f} row 1: has an empty filepath1 (every question is about at least one clip); "
                               "fix the row"]


def test_an_empty_split_is_an_error(root):
    """Reason side won: an empty list is a broken file, not a split of zero rows."""
    f = _write(root, [])
    assert _problems(root) == [f"{f}: expected a non-empty JSON list of rows; restore the official file"]
    _write(root, {"rows": [ROW]})
    assert _problems(root) == [f"{f}: expected a non-empty JSON list of rows; restore the official file"]


def test_bad_json_and_non_utf8_bytes_are_one_line(root):
    """Data side won for bytes that are not UTF-8 (the reason loader raised a traceback); the JSON error
    keeps the reason side's detail (what and where)."""
    f = _write(root, "[{not json")
    assert _problems(root) == [f"{f}: not valid JSON (Expecting property name enclosed in double quotes at line 1); "
                               "restore the official file"]
    f.write_bytes(b"[\xff\xfe]")
    assert _problems(root) == [f"{f}: not valid JSON (not UTF-8 text); restore the official file"]


def test_a_missing_split_names_the_split_and_what_to_do(root):
    _write(root, [ROW], "val")
    with pytest.raises(DataError) as err:
        reasonaqa.load_split(root, "test")
    msg = str(err.value)
    assert "\n" not in msg and "split 'test'" in msg and "found ['train', 'val']" in msg and "test.json" in msg
    with pytest.raises(DataProblems, match="no ReasonAQA JSON files named by split"):
        reasonaqa.load_split(root / "audio", "test")


def test_reason_lane_reads_rows_only_through_this_loader():
    """One reader: no module of the reason lane or its stages opens the JSON itself."""
    repo = Path(__file__).resolve().parents[3]
    files = [*sorted((repo / "lib/audioprobe/reason").glob("*.py")), *sorted((repo / "stages").glob("reason_*.py"))]
    assert files
    for p in files:
        text = p.read_text()
        assert "def load_rows" not in text and "split_files" not in text, f"{p}: read rows with load_split"
        assert "SPLITS = " not in text, f"{p}: SPLITS is defined once, in audioprobe.data.reasonaqa"
