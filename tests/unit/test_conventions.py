"""Project conventions that keep four lanes readable and their DVC deps exact.

- metrics/*.json: headline numbers only (at most headline.MAX_KEYS keys per file), every key
  prefixed with its lane or data group, no key name in two files.
- dvc.yaml: every stage lists, as deps, its own stage module and exactly the repository
  modules it imports (transitively), so editing one lane's code never reruns another and an
  edit to an imported module always reruns the stage.
- No document in the repository points at a design file outside it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from audioprobe.runtime.headline import MAX_KEYS

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "lib"


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], obj


METRICS = sorted((REPO / "metrics").glob("*.json"))


@pytest.mark.parametrize("path", METRICS, ids=[p.name for p in METRICS])
def test_metrics_file_is_small_flat_and_lane_prefixed(path):
    keys = dict(_leaves(json.loads(path.read_text())))
    assert 0 < len(keys) <= MAX_KEYS, f"{path.name}: {len(keys)} keys; detail belongs under plots/"
    lane = path.stem.split("_")[0]
    bad = [k for k in keys if not k.startswith(f"{lane}.")]
    assert not bad, f"{path.name}: keys without the '{lane}.' prefix: {bad[:5]}"
    assert all(isinstance(v, (int, float, str, bool)) for v in keys.values())


def test_no_key_name_in_two_metrics_files():
    seen: dict[str, str] = {}
    for path in METRICS:
        for key, _ in _leaves(json.loads(path.read_text())):
            assert key not in seen, f"'{key}' is in {seen.get(key)} and {path.name}"
            seen[key] = path.name


# ------------------------------------------------------------------ exact dvc deps
def _module_file(name: str) -> Path | None:
    """Return the repo file of a dotted module name (audioprobe.* under lib/, stages.*)."""
    parts = name.split(".")
    base = LIB if parts[0] == "audioprobe" else REPO if parts[0] == "stages" else None
    if base is None:
        return None
    path = base.joinpath(*parts)
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _imports(path: Path) -> set[str]:
    """Dotted names a module imports (any depth, including lazy imports inside functions)."""
    tree = ast.parse(path.read_text())
    pkg_parts = path.relative_to(LIB if path.is_relative_to(LIB) else REPO).with_suffix("").parts
    if path.name == "__init__.py":
        pkg_parts = pkg_parts[:-1]
    else:
        pkg_parts = pkg_parts[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(pkg_parts[: len(pkg_parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


def _is_trivial_init(path: Path) -> bool:
    """A package __init__ holding only a docstring and constants (no imports, no defs)."""
    if path.name != "__init__.py":
        return False
    tree = ast.parse(path.read_text())
    return all(isinstance(n, (ast.Expr, ast.Assign, ast.ImportFrom)) and not (
        isinstance(n, ast.ImportFrom) and n.module != "__future__") for n in tree.body)


def import_closure(start: Path) -> set[Path]:
    """Repo files a module needs at run time: itself, its imports and their parent packages."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # parent packages run their __init__
                f = _module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    todo.append(f)
    return {p for p in seen if not _is_trivial_init(p)}


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return stages


def _stage_module(cmd: str) -> Path:
    # `python -m stages.x ...`, or through the torchrun launcher:
    # `python -m audioprobe.parallel.launch --nproc N -m stages.x ...`
    m = re.search(r"python -m (stages\.\w+)", cmd) or re.search(r"python -m audioprobe\.parallel\.launch .*?-m (stages\.\w+)", cmd)
    assert m, f"stage command does not run a stages module: {cmd}"
    return _module_file(m.group(1))


def _dep_paths(stage: dict) -> list[Path]:
    out = []
    for d in stage.get("deps", []):
        d = d if isinstance(d, str) else next(iter(d))
        if "${" not in d:
            out.append(REPO / d)
    return out


def _lane_schema_files(stage: dict) -> set[Path]:
    """The params schema modules a stage validates (params.load_group imports them lazily)."""
    files = set()
    for p in stage.get("params", []):
        p = p if isinstance(p, str) else next(iter(p))
        head = p.split(".")[0].split("${")[0]
        if head in ("seed", "numerics", ""):
            continue
        mod = "audioprobe.data.params" if head in ("data", "data_report") else f"audioprobe.{head}.params"
        f = _module_file(mod)
        if f is not None:
            files.add(f)
    return files


STAGES = _stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_exactly_what_it_imports(name):
    stage = STAGES[name]
    stage = stage.get("do", stage)
    module = _stage_module(stage["cmd"])
    needed = import_closure(module)
    if "python -m audioprobe.parallel.launch" in stage["cmd"]:
        needed |= import_closure(_module_file("audioprobe.parallel.launch"))
    for schema in _lane_schema_files(stage):
        needed |= import_closure(schema)
    deps = [p for p in _dep_paths(stage) if p.is_relative_to(LIB) or p.is_relative_to(REPO / "stages")]
    uncovered = sorted(str(f.relative_to(REPO)) for f in needed
                       if not any(f == d or (d.is_dir() and f.is_relative_to(d)) for d in deps))
    assert not uncovered, f"{name}: imports not listed as deps: {uncovered}"
    unused = sorted(str(d.relative_to(REPO)) for d in deps
                    if not any(f == d or (d.is_dir() and f.is_relative_to(d)) for f in needed))
    assert not unused, f"{name}: deps it never imports: {unused}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_stage_runs_under_the_numerics_param(name):
    """`numerics` (pinned | native) changes every output, so switching it must rerun every stage;
    the stage package pins the environment on import, so its __init__ is a dep of every stage."""
    stage = STAGES[name].get("do", STAGES[name])
    assert "numerics" in stage.get("params", []), f"{name}: params must list numerics"
    assert "stages/__init__.py" in stage["deps"], f"{name}: deps must list stages/__init__.py"


def test_no_reference_to_design_files_outside_the_repo():
    pattern = re.compile(r"EXPERIMENTS\.md|ARCHITECTURE\.md|STYLE\.md|\.\./shared/design|shared/seeds")
    hits = []
    for path in [*REPO.glob("*.md"), *REPO.glob("*.yaml"), *(REPO / "lib").rglob("*.py"),
                 *(REPO / "lib").rglob("*.md"), *(REPO / "stages").rglob("*.py"),
                 *(p for p in (REPO / "tests").rglob("*.py") if p.name != "test_conventions.py")]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(REPO)}:{i}")
    assert not hits, f"references to files outside the repository: {hits[:10]}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_committed_outputs_are_uncached_and_persist(name):
    """cache: false outputs are committed to git; persist: true keeps them when a run fails
    (DVC otherwise deletes a stage's outputs before running it)."""
    stage = STAGES[name]
    stage = stage.get("do", stage)
    for kind in ("outs", "metrics", "plots"):
        for out in stage.get(kind, []):
            if isinstance(out, dict):
                (path, opts), = out.items()
                if opts.get("cache") is False:
                    assert opts.get("persist") is True, f"{name}: {path} needs persist: true"
                    assert path.startswith(("plots/", "metrics/")), f"{name}: committed output {path} outside plots/ metrics/"


# ------------------------------------------------------------------ the house's layout
LANES = ("data", "kws", "phase0", "detect", "reason")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_names_start_with_their_lane_and_run_their_own_module(name):
    """`dvc repro --glob 'phase0_*'` selects a whole lane, and the CLI's lane selection is that glob."""
    lane = name.split("_")[0]
    assert lane in LANES, f"stage {name}: its name must start with one of {', '.join(f'{x}_' for x in LANES)}"
    stage = STAGES[name].get("do", STAGES[name])
    assert _stage_module(stage["cmd"]) == REPO / "stages" / f"{name}.py", f"{name}: runs another stage's module"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_commits_one_folder_of_its_own(name):
    """Committed outputs: plots/<lane>/<step>[/<item>] (one folder per stage) and metrics/<lane>*.json."""
    stage = STAGES[name].get("do", STAGES[name])
    lane, step = name.split("_", 1)
    folder = f"plots/{lane}/{step}" + ("/${item}" if "foreach" in STAGES[name] and "${item}" in str(stage["outs"])
                                       else "/${key}" if "foreach" in STAGES[name] else "")
    committed = [next(iter(o)) for kind in ("outs", "metrics") for o in stage.get(kind, []) if isinstance(o, dict)]
    plots = [p for p in committed if p.startswith("plots/")]
    assert len(plots) <= 1, f"{name}: commits {plots}; one folder per stage"
    # a foreach folder may name its item with a prefix (train_shuffled/shuffled_${item}: a chart's series
    # are named by the folder, so it must not repeat another stage's item folder, train/${item})
    assert all(p == folder or re.fullmatch(re.escape(folder).replace(r"\$\{item\}", r"\w+\$\{item\}"), p)
               for p in plots), f"{name}: commits {plots}, expected {folder}"
    assert all(re.fullmatch(rf"metrics/{lane}(_\w+)?\.json", p) for p in committed if p.startswith("metrics/"))


def test_no_two_stages_write_into_one_folder():
    owners: dict[str, str] = {}
    for name, st in STAGES.items():
        stage = st.get("do", st)
        for o in stage.get("outs", []):
            path = o if isinstance(o, str) else next(iter(o))
            for other, owner in owners.items():
                assert not (path.startswith(other + "/") or other.startswith(path + "/") or path == other), \
                    f"{name} writes {path} inside {owner}'s {other}"
            owners[path] = name


def test_the_package_root_holds_groups_not_loose_modules():
    """lib/audioprobe/ holds packages grouped by purpose (shared blocks, lanes, runtime, parallel,
    tools, bench); a new module goes into one of them."""
    root = LIB / "audioprobe"
    loose = sorted(p.name for p in root.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules at the package root: {loose}; put them in a group (runtime/, parallel/, tools/, ...)"
    groups = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    assert groups == sorted(["audio", "bench", "cells", "data", "detect", "encoders", "kws", "metrics", "parallel",
                             "phase0", "reason", "runtime", "tools"]), groups


def test_tests_mirror_the_package():
    """A module's unit tests are under tests/unit/<its package>/; end-to-end runs under tests/e2e/."""
    tests = REPO / "tests"
    assert not list(tests.glob("test_*.py")), "tests sit in tests/unit/<area>/ or tests/e2e/"
    areas = {p.name for p in (tests / "unit").iterdir() if p.is_dir()}
    packages = {p.name for p in (LIB / "audioprobe").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert areas <= packages, f"tests/unit/ areas without a package: {sorted(areas - packages)}"
    names = [p.name for p in tests.rglob("test_*.py")]
    assert len(names) == len(set(names)), "two test files share a name (pytest imports them by basename)"
    for p in (tests / "unit").glob("*/test_*.py"):
        lane = p.parent.name
        if lane in LANES[1:]:
            assert p.name.startswith(f"test_{lane}_"), f"{p.relative_to(REPO)}: a {lane} test is named test_{lane}_*"
