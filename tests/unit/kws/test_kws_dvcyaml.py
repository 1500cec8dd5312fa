"""dvc.yaml's kws stages: file-level code deps, declared outputs, templates, artifacts.

Exact deps and persisting committed outputs are checked for every stage in test_conventions.py.
"""

from __future__ import annotations


import yaml

from conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = DVC["stages"]
def _code_deps(stage: dict) -> set[str]:
    return {d for d in stage["deps"] if d.endswith(".py") or d.startswith(("lib/", "stages/"))}


def test_no_kws_dep_names_a_folder_or_an_old_module():
    for name in ("kws_features", "kws_train", "kws_analyze"):
        for dep in _code_deps(STAGES[name].get("do", STAGES[name])):
            assert (REPO / dep).is_file(), f"{name}: {dep}"


def _outs(stage: dict) -> list[tuple[str, dict]]:
    items = stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
    return [(o, {}) if isinstance(o, str) else next(iter(o.items())) for o in items]


def test_analyze_declares_every_file_it_writes():
    # One committed folder per stage: every table lands in plots/kws/analyze (the stage's --plots).
    from stages.kws_analyze import TABLES

    declared = {path for path, _ in _outs(STAGES["kws_analyze"])}
    assert declared == {"plots/kws/analyze", "metrics/kws.json"}
    assert "--plots plots/kws/analyze" in STAGES["kws_analyze"]["cmd"]
    assert "provenance.json" in TABLES and all((REPO / "plots/kws/analyze" / t).is_file() for t in TABLES)


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
