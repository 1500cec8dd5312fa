"""dvc.yaml lists exactly the lib modules each phase0 stage imports (transitively), and its schema."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib"
STAGES = ("latents", "speaker_split", "frames", "conditioning_fit", "phase0_metrics", "phase0_report")


def _module_file(name: str) -> Path | None:
    base = LIB / name.replace(".", "/")
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.exists():
            return p
    return None


def _imports(path: Path, package: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("audioprobe")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("audioprobe"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names if _module_file(f"{mod}.{a.name}")}
    return out


def imported_files(stage: str) -> set[str]:
    """Repo-relative lib files a stage module imports, transitively (package __init__s with code too)."""
    seen: dict[str, Path] = {}
    todo = list(_imports(REPO / "stages" / f"{stage}.py", "stages"))
    while todo:
        mod = todo.pop()
        path = _module_file(mod)
        if mod in seen or path is None:
            continue
        seen[mod] = path
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        todo += _imports(path, pkg)
        todo += [".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 1)]
    # a docstring-only package __init__ is no dependency worth rerunning a stage for
    return {str(p.relative_to(REPO)) for p in seen.values()
            if not (p.name == "__init__.py" and not any(isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))
                                                        for n in ast.parse(p.read_text()).body))}


@pytest.mark.parametrize("stage", STAGES)
def test_stage_deps_are_exactly_its_imports_plus_its_schema(stage):
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    deps = {d for d in spec["deps"] if d.startswith("lib/")}
    expected = imported_files(stage) | {"lib/audioprobe/phase0/params.py"}  # loaded by params.load_group
    assert deps == expected, f"missing {sorted(expected - deps)}, extra {sorted(deps - expected)}"
    assert f"stages/{stage}.py" in spec["deps"]


def test_committed_outputs_survive_a_failed_run():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in STAGES:
        for kind in ("outs", "metrics"):
            for out in spec[stage].get(kind, []):
                if isinstance(out, dict):
                    (path, opts), = out.items()
                    if opts.get("cache") is False:
                        assert opts.get("persist") is True, f"{stage}: {path} needs persist: true"
                        assert path.startswith(("plots/phase0/", "metrics/phase0")), path
