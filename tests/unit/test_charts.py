"""Chart conventions of dvc.yaml's top-level `plots:` that can be checked without a browser.

What a screenshot of `dvc plots show` showed going wrong, pinned here:
- every Vega chart has a title naming its data source, an x label, and a y label unless its
  template draws no y title; a title fits one line of the offline page;
- banners come from provenance, not from fixed title text: no title says "synthetic" or
  "random-init"; every template draws the plotted files' `banner` column
  (lib/audioprobe/vega/banner_view.json), and every stage writing a plotted file writes it;
- loss and accuracy never share a y-axis;
- every Vega chart uses a repository template (DVC's default `linear` template tells runs
  apart only by a dash pattern and a file path cut short), and a chart with several data
  files names each series from its file;
- layer / epoch / step / iteration axes show integers;
- no PNG duplicates a Vega chart;
- the offline page scales PNGs down to its width instead of cutting them off.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from audioprobe.tools.plots_template import TEMPLATE_PATH, render

REPO = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
PLOTS = [next(iter(p.items())) if isinstance(p, dict) else (p, None) for p in DVC.get("plots", [])]
VEGA = {name: spec for name, spec in PLOTS if spec is not None}
PNGS = [name for name, spec in PLOTS if spec is None and name.endswith(".png")]
# One title line of the offline page: about 7 px per character at Vega's 13 px bold title
# font, so 200 characters (with each ${...} read as "embedded") is ~1400 px.
MAX_TITLE_CHARS = 200
INTEGER_AXES = ("layer", "epoch", "step", "iteration")


def _y_fields(spec: dict) -> list[str]:
    y = spec.get("y")
    if isinstance(y, dict):
        return [f for v in y.values() for f in (v if isinstance(v, list) else [v])]
    return [y] if isinstance(y, str) else list(y or [])


def _template(spec: dict) -> dict:
    return json.loads((REPO / spec["template"]).read_text())


def _encodings(node, channel: str):
    """Yield every encoding of `channel` anywhere in a Vega-Lite spec (layers, facets, concat)."""
    if isinstance(node, dict):
        enc = node.get("encoding")
        if isinstance(enc, dict) and isinstance(enc.get(channel), dict):
            yield enc[channel]
        for v in node.values():
            yield from _encodings(v, channel)
    elif isinstance(node, list):
        for v in node:
            yield from _encodings(v, channel)


def test_plots_section_is_not_empty():
    assert VEGA and PNGS


@pytest.mark.parametrize("name", sorted(VEGA))
def test_vega_chart_has_a_title_and_axis_labels_and_no_fixed_banner(name):
    spec = VEGA[name]
    title = spec.get("title", "")
    assert title, f"{name}: no title"
    assert "${data." in title or "${" in title and "weights" in title, f"{name}: the title names no data source"
    assert not re.search(r"synthetic|random-init|smoke test", title), (
        f"{name}: fixed banner text in the title; the banner comes from the data's `banner` column")
    shown = re.sub(r"\$\{[^}]*\}", "embedded", title)
    assert len(shown) <= MAX_TITLE_CHARS, (
        f"{name}: title is {len(shown)} characters; more than one line of the plots page (<= {MAX_TITLE_CHARS})")
    assert spec.get("x_label"), f"{name}: no x_label"
    if "template" in spec and "<DVC_METRIC_Y_LABEL>" not in (REPO / spec["template"]).read_text():
        return  # the template draws no y title (e.g. one labelled row per comparison)
    assert spec.get("y_label"), f"{name}: no y_label"


@pytest.mark.parametrize("name", sorted(VEGA))
def test_loss_and_accuracy_never_share_a_y_axis(name):
    spec = VEGA[name]
    text = " ".join(_y_fields(spec) + [spec.get("y_label", "")]).lower()
    has_loss = "loss" in text or "entropy" in text and "cross" in text
    has_acc = re.search(r"acc|accuracy", text) is not None
    assert not (has_loss and has_acc), f"{name}: loss and accuracy on one y-axis: {_y_fields(spec)}"


@pytest.mark.parametrize("name", sorted(VEGA))
def test_vega_chart_uses_a_repository_template_that_names_every_series(name):
    spec = VEGA[name]
    assert "template" in spec and (REPO / spec["template"]).is_file(), (
        f"{name}: uses a DVC default template; name a template under lib/ (series must be named, not dashed)")
    text = (REPO / spec["template"]).read_text()
    template = json.loads(text)
    assert "<DVC_METRIC_DATA>" in text and "<DVC_METRIC_TITLE>" in text, name
    assert "smooth" not in json.dumps(template.get("params", [])), f"{name}: a smoothing slider hides the data"
    files = spec["y"] if isinstance(spec.get("y"), dict) else {}
    if len(files) > 1:
        assert "filename" in text, f"{name}: {len(files)} data files but the template never names a series by its file"


@pytest.mark.parametrize("name", sorted(n for n, s in VEGA.items() if s.get("x") in INTEGER_AXES))
def test_integer_x_axes_show_integers(name):
    spec = VEGA[name]
    xs = list(_encodings(_template(spec), "x"))
    main = [e for e in xs if e.get("title") == "<DVC_METRIC_X_LABEL>"] or xs
    assert main, f"{name}: template has no x encoding"
    for enc in main:
        integer = enc.get("type") in ("ordinal", "nominal") or enc.get("axis", {}).get("format") == "d" \
            or enc.get("axis", {}).get("tickMinStep", 0) >= 1
        assert integer, f"{name}: x = {spec['x']} may show fractional ticks: {enc}"


def test_no_png_duplicates_a_vega_chart():
    vega_files = {str(Path(f).with_suffix("")) for spec in VEGA.values() if isinstance(spec.get("y"), dict)
                  for f in spec["y"]}
    for png in PNGS:
        path = Path(png)
        lane = path.parts[1] if len(path.parts) > 2 else ""
        assert str(path.with_suffix("")) not in vega_files and f"{lane}_{path.stem}" not in VEGA, (
            f"{png} duplicates a Vega chart")


def test_offline_page_scales_images_to_its_width():
    text = (REPO / TEMPLATE_PATH).read_text()
    assert text == render(), f"{TEMPLATE_PATH} is stale: run `audioprobe util plots-template`"
    assert "img { max-width: 100%; height: auto; }" in text


def test_excluded_values_are_filtered_not_drawn_as_zero():
    """The phase0 confidence chart's data has empty cells for excluded schemes: the template
    must turn them into null and filter them, never let toNumber('') = 0 through."""
    spec = VEGA["phase0_confidence_curve"]
    text = (REPO / spec["template"]).read_text()
    assert "=== ''" in text and "isValid(datum.y_num)" in text


BANNER_VIEW = REPO / "lib/audioprobe/vega/banner_view.json"  # the banner block every template opens with


@pytest.mark.parametrize("name", sorted(VEGA))
def test_every_vega_template_draws_the_banner_column(name):
    template = _template(VEGA[name])
    assert template.get("vconcat", [None])[0] == json.loads(BANNER_VIEW.read_text()), (
        f"{name}: {VEGA[name]['template']} does not open with lib/audioprobe/vega/banner_view.json")


def _stage_of(path: str) -> tuple[str, dict]:
    """The dvc.yaml stage (name, definition) with an output that is `path` or a folder above it."""
    for name, st in DVC["stages"].items():
        body = st.get("do", st)
        for out in body.get("outs", []) + body.get("plots", []) + body.get("metrics", []):
            out = next(iter(out)) if isinstance(out, dict) else out
            pattern = re.escape(out).replace(r"\$\{item\}", "[^/]+").replace(r"\$\{key\}", "[^/]+")
            if re.fullmatch(pattern + r"(/.*)?", path):
                return name, body
    raise AssertionError(f"{path}: no dvc.yaml stage writes it")


@pytest.mark.parametrize("name", sorted(VEGA))
def test_every_plotted_file_is_written_with_its_banner_column(name):
    from audioprobe.runtime.headline import BANNER_FIELD

    writers = ("with_banner", "with_row_banners", "add_banner_column")
    for path in VEGA[name]["y"]:
        stage, body = _stage_of(path)
        module = re.search(r"-m stages\.(\w+)", body["cmd"]).group(1)
        text = (REPO / "stages" / f"{module}.py").read_text()
        # a thin stage that runs another stage's command (reason_train_blind -> reason_train)
        for other in re.findall(r"^from stages import (\w+)", text, re.M):
            text += (REPO / "stages" / f"{other}.py").read_text()
        if module == "phase0_report":  # its confidence rows carry the banner (phase0/report.py)
            text = (REPO / "lib/audioprobe/phase0/report.py").read_text()
            assert f'"{BANNER_FIELD}":' in text, f"{name}: {path} ({stage}) has no {BANNER_FIELD} column"
            continue
        assert any(w in text for w in writers), f"{name}: {path} ({stage}) is written without its banner column"


@pytest.mark.parametrize("banner, shown", [
    ("synthetic data: a smoke test, not a finding about speech", "SYNTHETIC DATA: A SMOKE TEST"),
    ("", None),  # real data and weights: no banner line at all
    (None, "NO BANNER COLUMN IN THIS FILE"),  # a file written before the column existed says so
])
def test_the_banner_view_renders_the_banner_only_where_the_data_have_one(banner, shown):
    import vl_convert

    def render(n_rows: int) -> str:
        rows = [{"rev": "workspace", "x": i, **({} if banner is None else {"banner": banner})} for i in range(n_rows)]
        spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": rows},
                "vconcat": [json.loads(BANNER_VIEW.read_text()),
                            {"mark": "point", "encoding": {"x": {"field": "x", "type": "quantitative"}}}]}
        return vl_convert.vegalite_to_svg(vl_spec=spec)

    svg = render(3)
    for text in ("SYNTHETIC DATA", "NO BANNER COLUMN"):
        assert (text in svg) == (shown is not None and text in shown.upper()), (banner, text)
    if shown:  # one line per revision, however many rows carry it
        assert svg.count(f"workspace: {shown}") == render(1).count(f"workspace: {shown}") > 0


def _filled(template: str, rows: list[dict], x: str, y: str) -> dict:
    text = (REPO / template).read_text()
    for key, val in (("<DVC_METRIC_X>", x), ("<DVC_METRIC_Y>", y), ("<DVC_METRIC_TITLE>", "t"),
                     ("<DVC_METRIC_X_LABEL>", x), ("<DVC_METRIC_Y_LABEL>", y)):
        text = text.replace(key, val)
    spec = json.loads(text)
    spec["data"] = {"values": rows}
    return spec


def test_a_dev_accuracy_curve_spans_zero_to_one_with_its_chance_line():
    """A chance-level wobble (0.500-0.525) must not read as a climb: the axis is [0, 1], chance drawn."""
    import vl_convert

    assert VEGA["detect_finetune_dev_bal_acc"]["template"] == "lib/audioprobe/vega/accuracy_curves.json"
    rows = [{"rev": "workspace", "filename": "plots/detect/finetune/live/plots/metrics/dev_balanced_accuracy.tsv",
             "step": s, "dev_balanced_accuracy": 0.5 + 0.005 * k, "banner": ""} for k, s in enumerate((20, 40, 60))]
    svg = vl_convert.vegalite_to_svg(vl_spec=_filled("lib/audioprobe/vega/accuracy_curves.json", rows, "step",
                                                      "dev_balanced_accuracy"))
    ticks = re.findall(r">(\d\.\d+)<", svg)
    assert "0.0" in ticks and "1.0" in ticks and "chance (0.5)" in svg


def test_opro_reward_legend_names_the_model_not_the_file():
    import vl_convert

    rows = [{"rev": "workspace", "filename": f"plots/detect/opro/{m}/opro_{m}_history.csv", "iteration": i,
             "reward": 0.5 + 0.01 * i, "banner": ""} for m in ("base", "lora") for i in (0, 1)]
    svg = vl_convert.vegalite_to_svg(vl_spec=_filled(VEGA["detect_opro_reward"]["template"], rows, "iteration",
                                                      "reward"))
    assert ">base<" in svg and ">lora<" in svg and "history" not in svg


def test_a_nonnegative_layer_measure_has_no_axis_below_zero():
    """Entropy and fire rates are >= 0: the axis starts at 0 (a padded scale drew it dipping below)."""
    import vl_convert

    scale = _template(VEGA["kws_entropy_by_layer"])["vconcat"][1]["encoding"]["y"]["scale"]
    assert scale.get("domainMin") == 0 and "padding" not in scale
    rows = [{"rev": "workspace", "condition": c, "layer": l, "entropy": v, "banner": ""}
            for c, vals in (("base", (0.0, 0.0)), ("lif", (0.4, 1.2))) for l, v in zip((0, 1), vals)]
    svg = vl_convert.vegalite_to_svg(vl_spec=_filled(VEGA["kws_entropy_by_layer"]["template"], rows, "layer",
                                                      "entropy"))
    ticks = re.findall(r">([−-]?\d+(?:\.\d+)?)<", svg)
    assert "0.0" in ticks and not [t for t in ticks if t.startswith(("−", "-"))], ticks


def test_each_runs_threshold_box_sits_in_its_own_column():
    spec = _template(VEGA["kws_thresholds"])
    box = next(lay for lay in spec["vconcat"][1]["layer"] if lay["mark"]["type"] == "boxplot")
    points = next(lay for lay in spec["vconcat"][1]["layer"] if lay["mark"]["type"] == "point")
    assert box["encoding"]["xOffset"] == points["encoding"]["xOffset"] == {"field": "run", "type": "nominal"}


@pytest.mark.parametrize("name", sorted(n for n, s in VEGA.items() if s.get("template", "").endswith("live_curves.json")))
def test_live_curve_series_have_distinct_names(name):
    """live_curves.json names a series by the folder above /plots/metrics/: two files with the same
    folder name (train/mel and train_shuffled/mel) would be drawn as one zig-zag line."""
    y = VEGA[name]["y"]
    names = [(path.split("/plots/metrics/")[0].rsplit("/", 1)[-1], str(y[path])) for path in y]
    assert len(set(names)) == len(names), (name, names)  # (folder, field): one series each
