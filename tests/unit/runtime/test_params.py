"""params.yaml schema: the default file loads; every kind of bad value is one line naming the key."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audioprobe.runtime import params
from audioprobe.data.params import Data, Esc50
from audioprobe.runtime.errors import ParamsError
from audioprobe.kws.params import Kws

REPO = Path(__file__).resolve().parents[3]
DEFAULT = yaml.safe_load((REPO / "params.yaml").read_text())


def _set(tree: dict, dotted: str, value) -> dict:
    """Return a deep copy of tree with the dotted key set to value."""
    out = copy.deepcopy(tree)
    node = out
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return out


def _error(raw: dict) -> str:
    with pytest.raises(ParamsError) as info:
        params.validate(raw)
    msg = str(info.value)
    assert "\n" not in msg, f"error spans lines: {msg!r}"
    return msg


def test_default_file_loads_and_groups_resolve():
    p = params.load(REPO / "params.yaml")
    assert p["seed"] == DEFAULT["seed"]
    assert set(p) >= {"seed", "data", "data_report", "kws", "phase0"}
    esc = params.load_group("data.esc50", REPO / "params.yaml")
    assert isinstance(esc, Esc50)
    assert esc.source == DEFAULT["data"]["esc50"]["source"]
    assert esc.embedded.classes == DEFAULT["data"]["esc50"]["embedded"]["classes"]
    # the data groups are read back exactly as written (nothing dropped or coerced)
    assert p["data"].model_dump() == DEFAULT["data"]


def test_defaults_in_schema_equal_empty_file(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("")
    loaded = params.load(f)
    assert loaded["kws"] == Kws() and loaded["data"] == Data() and loaded["seed"] == 42


def _leaves(value, prefix: str) -> dict:
    """{dotted key: value} of a validated params value (lists are leaves)."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _leaves(sub, f"{prefix}.{key}").items()}
    return {prefix: value}


def _declared_differences() -> dict[str, str]:
    """Every schema module's DIFFERS_FROM_PARAMS_YAML: {dotted key: why its default is not params.yaml's}."""
    import importlib

    root = REPO / "lib"
    out: dict[str, str] = {}
    for f in sorted((root / "audioprobe").rglob("params.py")):
        module = importlib.import_module(".".join(f.relative_to(root).with_suffix("").parts))
        out.update(getattr(module, "DIFFERS_FROM_PARAMS_YAML", {}))
    return out


def test_params_yaml_equals_the_schema_defaults_but_where_a_schema_says_why():
    """params.yaml holds the embedded default; a schema default differs from it only on purpose,
    declared with its reason in the schema module's DIFFERS_FROM_PARAMS_YAML (e.g. the kws schema
    holds the origin's real-data recipe)."""
    loaded = params.load(REPO / "params.yaml")
    differ = {}
    for group, value in loaded.items():
        schema = params.Root if group in params.Root.model_fields else params.schema_for(group)
        default = getattr(schema(), group) if schema is params.Root else schema()
        dump = (lambda v: v.model_dump(mode="json") if hasattr(v, "model_dump") else v)
        yaml_leaves, default_leaves = _leaves(dump(value), group), _leaves(dump(default), group)
        assert yaml_leaves.keys() == default_leaves.keys(), group
        differ.update({k: (v, default_leaves[k]) for k, v in yaml_leaves.items() if v != default_leaves[k]})
    declared = _declared_differences()
    assert all(isinstance(why, str) and why.strip() for why in declared.values()), "every difference says why"
    undeclared = {k: f"params.yaml {v!r}, schema {d!r}" for k, (v, d) in differ.items() if k not in declared}
    assert not undeclared, f"schema defaults that differ from params.yaml without a reason: {undeclared}"
    stale = sorted(set(declared) - set(differ))
    assert not stale, f"declared as differing from params.yaml but equal to it (or no such key): {stale}"


def test_unknown_top_level_key_lists_allowed_keys():
    msg = _error({**DEFAULT, "bogus": 1})
    assert "unknown key 'bogus'" in msg
    for k in ("seed", "data", "kws", "phase0"):
        assert k in msg


def test_nested_unknown_key_names_dotted_key_and_allowed_keys():
    msg = _error(_set(DEFAULT, "data.esc50.embedded.colour", "red"))
    assert "'data.esc50.embedded.colour'" in msg
    assert "allowed keys here: seed, classes, clips_per_fold" in msg
    msg = _error(_set(DEFAULT, "data.librispeech.mirror", "x"))
    assert "'data.librispeech.mirror'" in msg
    for k in ("source", "path", "url", "sha256", "subset", "embedded"):
        assert k in msg


def test_bad_literal_lists_the_allowed_values():
    msg = _error(_set(DEFAULT, "data.esc50.source", "ftp"))
    assert msg.startswith("params.yaml: data.esc50.source ")
    assert "'embedded', 'path' or 'url'" in msg and "'ftp'" in msg
    msg = _error(_set(DEFAULT, "kws.train.device", "tpu"))
    assert "kws.train.device" in msg and "'auto', 'cpu' or 'cuda'" in msg


@pytest.mark.parametrize(
    ("key", "value", "expect"),
    [
        ("data.esc50.embedded.classes", "ten", "valid integer"),
        ("data.esc50.embedded.classes", 10.0, "valid integer"),  # strict: no float -> int
        ("data.musan.embedded.seconds", "4", "valid number"),  # strict: no str -> float
        ("seed", True, "valid integer"),
        ("data.esc50.embedded", 5, "valid dictionary"),
    ],
)
def test_wrong_type_names_key_and_type(key, value, expect):
    msg = _error(_set(DEFAULT, key, value))
    assert f" {key} " in msg and expect in msg and repr(value) in msg


@pytest.mark.parametrize(
    ("key", "value", "bound"),
    [
        ("data.esc50.embedded.classes", 1, "greater than or equal to 2"),
        ("data.speech_commands.embedded.words", 36, "less than or equal to 35"),
        ("data.musan.embedded.seconds", 0.0, "greater than 0"),
        ("seed", -1, "greater than or equal to 0"),
        ("data_report.hist_bins", 1001, "less than or equal to 1000"),
    ],
)
def test_out_of_range_names_key_and_range(key, value, bound):
    msg = _error(_set(DEFAULT, key, value))
    assert f" {key} " in msg and bound in msg and f"got {value!r}" in msg


def test_several_errors_report_the_first_and_a_count():
    raw = _set(_set(DEFAULT, "data.esc50.embedded.classes", 1), "data.esc50.source", "ftp")
    assert "(+1 more)" in _error(raw)


def test_top_level_not_a_mapping():
    assert "expected a mapping" in _error([1, 2])  # type: ignore[arg-type]


def test_missing_file_and_invalid_yaml_are_one_line(tmp_path):
    with pytest.raises(ParamsError) as info:
        params.load(tmp_path / "nope.yaml")
    assert "nope.yaml: not found" in str(info.value) and "\n" not in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  esc50: [unclosed\n  x: 1\n")
    with pytest.raises(ParamsError) as info:
        params.load(bad)
    assert "bad.yaml: not valid YAML" in str(info.value) and "\n" not in str(info.value)


def test_load_group_validates_its_own_group_only(tmp_path):
    # A stage depends on its own lane's schema only (exact DVC deps): a bad value in
    # another lane does not stop it, one in its own group does, and an unknown
    # top-level key stops every stage.
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(_set(DEFAULT, "kws.train.epochs", 0)))
    assert params.load_group("data.esc50", f).source == "embedded"
    with pytest.raises(ParamsError, match=r"kws\.train\.epochs"):
        params.load_group("kws.model", f)
    f.write_text(yaml.safe_dump({**DEFAULT, "kwz": {}}))
    with pytest.raises(ParamsError, match=r"unknown key 'kwz'"):
        params.load_group("data.esc50", f)


def test_download_stage_rejects_bad_params_with_one_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(_set(DEFAULT, "data.esc50.source", "ftp")))
    out = tmp_path / "raw" / "esc50"
    proc = subprocess.run(
        [sys.executable, "-m", "stages.data_download", "--dataset", "esc50", "--params", str(f), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "data.esc50.source" in lines[0] and "'url'" in lines[0]
    assert not out.exists() and not (tmp_path / "raw").exists()
