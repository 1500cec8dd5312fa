"""dvc.yaml's kws stages: exact code deps, own params only, committed outputs that persist."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC["stages"]
# Dependencies every stage has whatever it imports: params.load_group imports the lane's
# schema by name (importlib), so no import statement shows it.
ALWAYS = {"lib/audioprobe/params.py", "lib/audioprobe/atomic.py", "lib/audioprobe/errors.py",
          "lib/audioprobe/kws/params.py", "stages/_run.py"}


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    base = REPO / "lib" if parts[0] == "audioprobe" else REPO
    p = base.joinpath(*parts)
    if p.with_suffix(".py").is_file():
        return p.with_suffix(".py")
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    return None


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):  # function-level imports too
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] in ("audioprobe", "stages")}


def import_closure(stage_file: str) -> set[str]:
    """Repo-relative .py files a stage module imports, transitively (empty __init__ left out)."""
    seen: set[Path] = set()
    todo = [REPO / stage_file]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo += [f for m in _imports(p) if (f := _module_file(m)) is not None and f not in seen]
    # package __init__ files holding only a docstring are no code a stage depends on
    return {str(p.relative_to(REPO)) for p in seen if not (p.name == "__init__.py" and len(p.read_text()) < 200)}


def _code_deps(stage: dict) -> set[str]:
    return {d for d in stage["deps"] if d.endswith(".py") or d.startswith(("lib/", "stages/"))}


@pytest.mark.parametrize("name", ["kws_features", "kws_train", "kws_analyze"])
def test_code_deps_are_exactly_the_imported_modules(name):
    stage = STAGES[name]
    expected = import_closure(f"stages/{name}.py") | ALWAYS
    assert _code_deps(stage) == expected


def test_no_kws_dep_names_a_folder_or_an_old_module():
    for name in ("kws_features", "kws_train", "kws_analyze"):
        for dep in _code_deps(STAGES[name]):
            assert (REPO / dep).is_file(), f"{name}: {dep}"


def _outs(stage: dict) -> list[tuple[str, dict]]:
    items = stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
    return [(o, {}) if isinstance(o, str) else next(iter(o.items())) for o in items]


@pytest.mark.parametrize("name", ["kws_train", "kws_analyze"])
def test_committed_outputs_are_uncached_and_persist(name):
    committed = [(path, opts) for path, opts in _outs(STAGES[name]) if path.startswith(("plots/", "metrics/"))]
    assert committed
    for path, opts in committed:
        assert opts.get("cache") is False and opts.get("persist") is True, path


def test_analyze_declares_every_file_it_writes():
    from stages.kws_analyze import TABLES

    declared = {path for path, _ in _outs(STAGES["kws_analyze"])}
    assert declared == {f"plots/kws/{t}" for t in TABLES} | {"metrics/kws.json"}


def test_plots_reference_kws_templates_that_exist_and_no_png():
    kws = [next(iter(p.items())) if isinstance(p, dict) else (p, {}) for p in DVC["plots"]]
    kws = [(k, v) for k, v in kws if k.startswith("kws_") or k.startswith("plots/kws")]
    assert kws and not any(k.endswith(".png") for k, _ in kws)
    for key, spec in kws:
        assert (REPO / spec["template"]).is_file(), key
    metrics = {k for k, _ in kws if k.startswith("kws_") and k[4:] in
               ("train_loss", "val_loss", "train_acc", "val_acc")}
    assert len(metrics) == 4  # one chart per metric: loss and accuracy never share an axis


def test_checkpoints_are_model_artifacts():
    arts = {k: v for k, v in DVC.get("artifacts", {}).items() if k.startswith("kws-")}
    assert set(arts) == {f"kws-{c}-{r}" for c in ("base", "lif") for r in (0, 1, 2)}
    assert all(v["type"] == "model" and v["path"].startswith("data/kws/runs/") for v in arts.values())
